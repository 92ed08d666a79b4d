"""Console passwords that meet the account's policy, and the vault that seals credentials (Fernet)."""
