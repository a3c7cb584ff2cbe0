"""The AWS session of one bake: short timeouts, bounded retries, credentials checked first."""

from __future__ import annotations

from baking.errors import EXIT_CREDENTIALS, BakeError


def aws_session(region: str, endpoint: str | None):
    """A client factory for the bake's region (``endpoint``: the local EC2 API in local mode)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30
    )
    session = boto3.session.Session(region_name=region)

    def client(service: str):
        return session.client(service, region_name=region, endpoint_url=endpoint, config=config)

    return client


def check_credentials(client) -> str:
    """The account id; exit 4 before anything else happens if there are no usable credentials."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return client("sts").get_caller_identity()["Account"]
    except ClientError as error:
        raise BakeError(
            EXIT_CREDENTIALS, f"credentials rejected: {error.response['Error'].get('Code')}"
        ) from None
    except BotoCoreError as error:
        raise BakeError(EXIT_CREDENTIALS, f"credentials unavailable: {error}") from None
