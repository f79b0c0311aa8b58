from django.contrib.auth.hashers import PBKDF2PasswordHasher


class DevPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 with fewer rounds: demo passwords are published, start-up speed is not."""

    algorithm = "pbkdf2_sha256_dev"
    iterations = 20_000
