"""Infrastructure: typed configuration and one CDK for Terraform stack per region.

Importing this package is cheap; the cdktf bindings are imported only by the modules that build stacks.
"""
