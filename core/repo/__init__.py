"""A repository into a build plan: its heads, the few files detection reads, the plan, and the
spec a deploy is checked against."""
