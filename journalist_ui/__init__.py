"""The Postern journalist station: the air-gapped machine that decrypts submissions."""
