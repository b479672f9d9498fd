"""Pure-function tests of plugins/module_utils (naming rules, durations, expiry, bundles, redaction, errors)."""

import datetime
import importlib
import sys
import types

import pytest

MODULE_UTILS = ("errors", "naming", "durations", "ssm", "redaction", "retries")


@pytest.fixture(scope="module")
def ku(collection_root):
    """The collection's module_utils modules as one namespace (ku.validate_prefix, ku.KubeadmAwsError, ...)."""
    sys.path.insert(0, str(collection_root))
    try:
        ns = types.SimpleNamespace()
        for name in MODULE_UTILS:
            mod = importlib.import_module("ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils." + name)
            for attr in dir(mod):
                if not attr.startswith("_"):
                    setattr(ns, attr, getattr(mod, attr))
        yield ns
    finally:
        sys.path.remove(str(collection_root))


@pytest.mark.parametrize("prefix", ["/kubeadm-aws/prod", "/a", "/x/y_z/1.2-3", "/kubeadm-aws/prod/"])
def test_valid_prefixes(ku, prefix):
    assert ku.validate_prefix(prefix) == prefix.rstrip("/")


@pytest.mark.parametrize("prefix, fragment", [
    ("kubeadm-aws/prod", "must start with '/'"),
    ("/kubeadm aws/prod", "characters SSM does not allow"),
    ("/kubeadm-aws/pr!od", "'!'"),
    ("/a//b", "empty path segment"),
    ("/aws/thing", "reserves"),
    ("/SSM-stuff/x", "reserves"),
    ("/" + "/".join(["l"] * 14), "levels"),
    ("", "must not be empty"),
])
def test_invalid_prefixes(ku, prefix, fragment):
    with pytest.raises(ku.KubeadmAwsError) as e:
        ku.validate_prefix(prefix)
    assert fragment in str(e.value)
    assert e.value.field == "prefix"


def test_default_prefix_and_cluster_name(ku):
    assert ku.resolve_prefix("prod") == "/kubeadm-aws/prod"
    assert ku.resolve_prefix("prod", "/custom/p") == "/custom/p"
    for bad in ["", "-x", "a/b", "a b", "x" * 65]:
        with pytest.raises(ku.KubeadmAwsError) as e:
            ku.resolve_prefix(bad)
        assert e.value.field == "cluster_name"


@pytest.mark.parametrize("text, seconds", [
    (90, 90), ("90", 90), ("90s", 90), ("30m", 1800), ("24h", 86400), ("1h30m", 5400), ("2d", 172800),
    ("0", 0),
])
def test_durations(ku, text, seconds):
    assert ku.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "1x", "-5", "h"])
def test_bad_durations(ku, text):
    with pytest.raises(ku.KubeadmAwsError):
        ku.parse_duration(text, "min_ttl")


def test_expiry_facts(ku):
    now = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    f = ku.expiry_facts("2026-01-01T12:10:00Z", now, min_ttl=300)
    assert f == {"token_expires": "2026-01-01T12:10:00Z", "token_expired": False, "token_ttl_seconds": 600,
                 "token_usable": True}
    f = ku.expiry_facts("2026-01-01T12:10:00+00:00", now, min_ttl=1800)
    assert f["token_usable"] is False and f["token_expired"] is False
    f = ku.expiry_facts("2026-01-01T11:59:59Z", now)
    assert f["token_expired"] is True and f["token_ttl_seconds"] == 0 and f["token_usable"] is False
    f = ku.expiry_facts(None, now, min_ttl=99999)
    assert f["token_expired"] is False and f["token_usable"] is True and f["token_ttl_seconds"] is None


def test_bundles_equal_ignores_timestamps(ku):
    a = {"x": 1, "l": [1, 2], "updated_at": "2026-01-01T00:00:00Z"}
    b = {"l": [1, 2], "x": 1, "updated_at": "2027-01-01T00:00:00Z"}
    assert ku.bundles_equal(a, b)
    assert not ku.bundles_equal(a, dict(b, x=2))
    assert not ku.bundles_equal(None, b)


def test_redact(ku):
    msg = "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --certificate-key " + "a" * 64
    out = ku.redact(msg)
    assert "abcdef.0123456789abcdef" not in out and "a" * 64 not in out
    assert "<redacted-token>" in out


def test_kms_key_matching(ku):
    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert ku.kms_key_matches(arn, "1234abcd-12ab-34cd-56ef-1234567890ab")
    assert ku.kms_key_matches("alias/x", "alias/x")
    assert ku.kms_key_matches("alias/x", "arn:aws:kms:us-east-1:123456789012:alias/x")
    assert not ku.kms_key_matches("alias/aws/ssm", "alias/x")
    assert ku.kms_key_matches("anything", None)


def test_validation_errors_are_kubeadm_aws_errors_naming_the_option(ku):
    with pytest.raises(ku.KubeadmAwsValidationError) as e:
        ku.parse_duration("soon", "min_ttl")
    assert isinstance(e.value, ku.KubeadmAwsError)
    assert e.value.field == "min_ttl" and e.value.kwargs == {"field": "min_ttl"} and e.value.exception is None
    assert "min_ttl" in e.value.message


def test_aws_call_turns_botocore_errors_into_api_errors(ku):
    import botocore.exceptions
    err = botocore.exceptions.ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetParameters")
    with pytest.raises(ku.KubeadmAwsApiError) as e:
        with ku.aws_call("read SSM parameters /x"):
            raise err
    assert e.value.message == "Failed to read SSM parameters /x" and e.value.exception is err
    assert "AccessDeniedException" in str(e.value)
    with pytest.raises(ku.KubeadmAwsValidationError):  # errors of our own pass through unchanged
        with ku.aws_call("read"):
            raise ku.KubeadmAwsValidationError("bad", "x")


def test_decode_bundle_refuses_what_is_not_a_json_object(ku):
    assert ku.decode_bundle("/p", None) is None
    assert ku.decode_bundle("/p", {"Value": '{"a": 1}'}) == {"a": 1}
    for value in ("not json", "[1, 2]"):
        with pytest.raises(ku.KubeadmAwsStateError) as e:
            ku.decode_bundle("/p", {"Value": value})
        assert "/p" in e.value.message and e.value.kwargs == {"parameter": "/p"}


def test_bounded_backoff_doubles_up_to_the_cap_and_stops_at_the_deadline(ku):
    now = [100.0]

    def clock():
        return now[0]

    waits = []
    for wait in ku.bounded_backoff(60, clock=clock):
        waits.append(wait)
        now[0] += wait + 0.5  # each attempt itself takes half a second
    assert waits[:5] == [1, 2, 4, 8, 10] and all(w <= 10 for w in waits)
    assert 55 <= sum(waits) + 0.5 * len(waits) <= 61  # used up the minute, not more
    assert list(ku.bounded_backoff(0, clock=clock)) == []
    assert next(ku.bounded_backoff(2.5, clock=clock)) == 1
