"""The shipped production layout (deploy/): nginx site, systemd units, environment file."""
