"""Infrastructure layer: key providers that unwrap a vault master key (passphrase, key file, environment)."""
