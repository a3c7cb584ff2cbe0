"""Pulumi Deployments: the settings files per stack and the script that deploys one commit."""
