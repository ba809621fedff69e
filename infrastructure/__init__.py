"""Deployment knowledge shared by every layer: configuration and the native local platform."""
