"""Embedded local AWS: moto in server mode, Terraform applying the real stacks, a local Lambda runtime."""
