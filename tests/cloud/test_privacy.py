import pytest

from cloud.privacy import mask_id_number, mask_name, mask_phone


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三明", "张*明"), ("欧阳小明", "欧**明"), ("王芳", "王*"), ("李", "李"), ("", "")],
)
def test_names(name, masked):
    assert mask_name(name) == masked


def test_id_numbers_keep_first_six_and_last_four():
    assert mask_id_number("110101195001011234") == "110101********1234"
    assert mask_id_number("12345") == "*****"
    assert mask_id_number(None) is None


def test_phones_keep_first_three_and_last_four():
    assert mask_phone("13800135678") == "138****5678"
    assert mask_phone("12345") == "*****"
