"""gemmlowp fixed-point arithmetic on int32, in Python, for compile-time tables.

The int8 SOFTMAX of TFLM evaluates exp() with gemmlowp's fixed-point
polynomial. Its input is (x - max) for an int8 x, so only 256 values occur:
the compiler evaluates them here, once, into a table, bit-identical to the C++
(int32 wrap-around and saturation emulated explicitly).
"""

from __future__ import annotations

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    # C++ integer division truncates toward zero
    q = abs(total) // (1 << 31)
    return wrap32(q if total >= 0 else -q)


def rdbpot(x: int, exponent: int) -> int:
    """RoundingDivideByPOT (round half away from zero)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def sat_mul_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent> on int32."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap32(x << exponent)


def rescale(raw: int, src_int_bits: int, dst_int_bits: int) -> int:
    return sat_mul_pot(raw, src_int_bits - dst_int_bits)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """F0 -> F0."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    inner = wrap32(srdhm(wrap32(x4_over_4 + x3), constant_1_over_3) + x2)
    x4_over_24_plus = sat_mul_pot(inner, -1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + x4_over_24_plus)))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp exp_on_negative_values: FixedPoint<int32, integer_bits> (<= 0) -> F0."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = wrap32((a & mask) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0)
    )
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    barrel = [(-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
              (2, 39332535), (3, 720401), (4, 242)]  # fmt: skip
    for exponent, multiplier in barrel:
        if integer_bits > exponent:
            shift = fractional_bits + exponent
            if remainder & (1 << shift):
                result = srdhm(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = INT32_MAX
    return result
