"""SSH to instances: connecting, key files, the host profiles (EC2, the sandbox) and the
operator's address."""
