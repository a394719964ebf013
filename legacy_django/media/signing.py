"""Pre-signed download URLs for Alibaba Cloud OSS and Tencent Cloud COS.

Both SDKs sign locally with the configured keys; no request leaves the
machine, so this works offline and with the dummy default credentials.
"""
import oss2
from django.conf import settings
from qcloud_cos import CosConfig, CosS3Client

PROVIDERS = ("oss", "cos")


def sign_oss(key, expires):
    auth = oss2.Auth(settings.OSS_ACCESS_KEY_ID, settings.OSS_ACCESS_KEY_SECRET)
    bucket = oss2.Bucket(auth, settings.OSS_ENDPOINT, settings.OSS_BUCKET)
    # slash_safe keeps "a/b.txt" as a path; by default oss2 sends "a%2Fb.txt".
    return bucket.sign_url("GET", key, expires, slash_safe=True)


def sign_cos(key, expires):
    config = CosConfig(
        Region=settings.COS_REGION,
        SecretId=settings.COS_SECRET_ID,
        SecretKey=settings.COS_SECRET_KEY,
    )
    client = CosS3Client(config)
    return client.get_presigned_url(
        Method="GET", Bucket=settings.COS_BUCKET, Key=key, Expired=expires
    )


def signed_url(provider, key, expires):
    if provider == "oss":
        return sign_oss(key, expires)
    if provider == "cos":
        return sign_cos(key, expires)
    raise ValueError(f"unknown provider {provider!r}")
