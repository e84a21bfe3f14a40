import grpc
import pytest

from kantoku.services._core.auth import check_token
from kantoku.services._core.errors import Category, KantokuError, invalid
from kantoku.services._core.rpc import to_status_proto
from kantoku.services.tts.language import detect_language


def test_status_carries_error_info() -> None:
    status = to_status_proto(invalid("text: must not be empty", reason="TEXT_EMPTY"))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "text: must not be empty"
    from google.rpc import error_details_pb2

    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "TEXT_EMPTY" and info.domain == "kantoku.dev"


def test_categories_have_distinct_exit_codes() -> None:
    codes = [c.exit_code for c in Category]
    assert len(set(codes)) == len(codes) and 0 not in codes


@pytest.mark.parametrize(("metadata", "reason"), [
    ([], "TOKEN_MISSING"),
    ([("authorization", "Bearer wrong")], "TOKEN_INVALID"),
    ([("authorization", "Basic s3cret")], "TOKEN_INVALID"),
])
def test_token_check_rejects(metadata: list, reason: str) -> None:
    with pytest.raises(KantokuError) as info:
        check_token(metadata, "s3cret")
    assert info.value.reason == reason
    assert info.value.category == Category.UNAUTHENTICATED


def test_token_check_accepts_and_is_off_without_token() -> None:
    check_token([("authorization", "Bearer s3cret")], "s3cret")
    check_token([], None)


@pytest.mark.parametrize(("text", "language"), [
    ("Hello there.", "en"),
    ("こんにちは、世界。", "ja"),
    ("今日はAIの話をします", "ja"),
    ("The word 東京 means Tokyo", "en"),
    ("123 !?", "en"),
])
def test_language_detection(text: str, language: str) -> None:
    assert detect_language(text) == language
