"""Which AWS account and region a deploy uses, where Toast keeps its files, and who this
installation is."""
