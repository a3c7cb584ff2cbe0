"""golden-fleet's platform: Pulumi Cloud settings, policy enforcement, drift detection, CI roles."""
