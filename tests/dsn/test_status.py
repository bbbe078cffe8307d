from postroom.dsn.evidence import best_status, reply_code_in
from postroom.dsn.status import EnhancedStatus, parse_reply, parse_reply_lines


def test_enhanced_status_accepts_one_to_three_digit_subject_and_detail() -> None:
    assert EnhancedStatus.parse("550 5.7.509 Access denied") == EnhancedStatus(
        5, 7, 509
    )
    assert EnhancedStatus.parse("421 4.4.2 timeout") == EnhancedStatus(4, 4, 2)


def test_enhanced_status_ignores_ip_addresses() -> None:
    assert EnhancedStatus.parse("host 192.0.2.1 said no") is None
    assert EnhancedStatus.parse("[10.5.1.1]") is None


def test_reply_without_enhanced_code_derives_class_zero_zero() -> None:
    reply = parse_reply(550, "No such user")

    assert str(reply.status) == "5.0.0"
    assert reply.status_given is False


def test_multiline_reply_keeps_every_line_and_first_code() -> None:
    reply = parse_reply_lines(
        ["550-5.1.1 The email account", "550 5.1.1 does not exist"]
    )

    assert reply.code == 550
    assert str(reply.status) == "5.1.1"
    assert reply.text.count("\n") == 1


def test_specific_code_in_text_beats_generic_status_field() -> None:
    status = best_status("5.0.0", "550 5.1.1 <a@example.org>... User unknown")

    assert str(status) == "5.1.1"


def test_specific_status_field_is_kept_over_text() -> None:
    assert str(best_status("5.2.2", "550 5.1.1 full")) == "5.2.2"


def test_text_code_of_another_class_is_not_taken() -> None:
    assert best_status(None, "451 4.3.0 try later", "550") is None


def test_reply_code_is_not_read_from_numbers_inside_words() -> None:
    assert reply_code_in("host mx.example.jp [192.0.2.20]: 550 5.7.0 no") == "550"
    assert reply_code_in("id 1P1ceB-000FL1-4q port 25") is None
