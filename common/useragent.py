"""The connector's User-Agent: a leaf module, so clients import it without importing the runtime."""

USER_AGENT = "rds-connector/0.1 (+https://github.com/Sciebo-RDS)"
