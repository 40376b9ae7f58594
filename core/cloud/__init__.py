"""The AWS resources Toast owns: the AWS adapter, DNS ownership, network, UserData, pricing,
doctor."""
