"""Console passwords that meet the account's policy, the vault that seals credentials (Fernet, or AWS KMS
data keys through a key service it is given), and their destruction for good (envelopes)."""
