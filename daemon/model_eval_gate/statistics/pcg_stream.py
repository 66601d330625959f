"""numpy's PCG64 stream, drawn the way Generator.integers(0, n) draws it, compiled (pure: no I/O).

The compiled bootstrap counts each drawn position as it comes instead of
writing and re-reading the positions numpy would draw.
"""
from __future__ import annotations

import numpy as np

from .compiled import compiled as _compiled, numba

if numba is not None:
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic


# Generator.integers(0, n) with n < 2**32 takes one 32-bit output of the bit
# generator per value (PCG64's 64-bit outputs split low half first, then high
# half), scales it by Lemire's multiply-shift and rejects the rare biased
# outputs (numpy's random_bounded_uint32_fill / buffered_bounded_lemire_uint32).
# Doing the same here lets the kernel count the draws as they come, without
# writing and re-reading 4-8 MB of positions per resample, and it draws about
# twice as fast as numpy's generic loop.  `stream_matches_numpy` checks it
# against numpy's own Generator (a rejection-heavy bound included); if they
# ever differ (numpy may change a stream between versions) the kernel takes
# numpy's positions instead.

#: PCG64's 128-bit LCG multiplier (PCG_DEFAULT_MULTIPLIER_128).
_PCG_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341

#: state array layout: [state high, state low, increment high, increment low, has_uint32, uinteger]
_STATE_WORDS = 6


def _intrinsic_pcg_step():
    @intrinsic
    def pcg_step(typingctx, high, low, increment_high, increment_low):
        """(high, low) of state * multiplier + increment (mod 2**128), in one 128-bit multiply."""
        signature = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64, types.uint64, types.uint64)

        def codegen(context, builder, sig, args):
            wide = ir.IntType(128)
            shift = ir.Constant(wide, 64)

            def joined(high_word, low_word):
                return builder.or_(builder.shl(builder.zext(high_word, wide), shift), builder.zext(low_word, wide))

            stepped = builder.add(builder.mul(joined(args[0], args[1]), ir.Constant(wide, _PCG_MULTIPLIER)),
                                  joined(args[2], args[3]))
            word = ir.IntType(64)
            words = [builder.trunc(builder.lshr(stepped, shift), word), builder.trunc(stepped, word)]
            return context.make_tuple(builder, sig.return_type, words)

        return signature, codegen
    return pcg_step


_pcg_step = _intrinsic_pcg_step() if numba is not None else None


@_compiled(["boolean(uint64[::1], int64, uint8[::1], boolean)", "boolean(uint64[::1], int64, int32[::1], boolean)"])
def _draw(state, n, out, counting):
    """Draw len(out) values of Generator.integers(0, n) from `state`, advancing it.

    counting: out are counts (out[j] += 1 per draw of j, len(out) == n
    draws); returns True if a count wrapped around (uint8 past 255).
    Otherwise out receives the positions themselves.
    """
    mask = np.uint64(0xFFFFFFFF)
    bound = np.uint64(n)
    threshold = (np.uint64(0x100000000) - bound) % bound
    high, low, increment_high, increment_low = state[0], state[1], state[2], state[3]
    has_half, half = state[4] != np.uint64(0), state[5]
    wrapped = False
    draws = n if counting else out.shape[0]
    for i in range(draws):
        while True:  # one bounded value: Lemire's multiply-shift with rejection
            if has_half:
                word = half
                has_half = False
            else:
                high, low = _pcg_step(high, low, increment_high, increment_low)
                mixed = high ^ low
                rotation = high >> np.uint64(58)
                output = (mixed >> rotation) | (mixed << ((np.uint64(64) - rotation) & np.uint64(63)))
                word = output & mask
                half = output >> np.uint64(32)
                has_half = True
            scaled = word * bound
            if (scaled & mask) >= threshold:
                break
        value = scaled >> np.uint64(32)
        if counting:
            out[value] += 1
            wrapped |= out[value] == 0
        else:
            out[i] = value
    state[0], state[1] = high, low
    state[4], state[5] = np.uint64(1 if has_half else 0), half
    return wrapped


def generator_state(seed: int) -> np.ndarray:
    """The state array of numpy.random.default_rng(seed) (PCG64), for _draw."""
    bit_generator = np.random.default_rng(seed).bit_generator
    state = bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise ValueError(f"default_rng uses {state.get('bit_generator')!r}, not PCG64")
    words = (state["state"]["state"], state["state"]["inc"])
    return np.array([words[0] >> 64, words[0] & (2**64 - 1), words[1] >> 64, words[1] & (2**64 - 1),
                     state["has_uint32"], state["uinteger"]], dtype=np.uint64)


def stream_matches_numpy() -> bool:
    """Whether _draw gives numpy's Generator.integers values here (a rejection-heavy bound included)."""
    if numba is None:
        return False
    try:
        for seed, n in ((20261202, 1_000_003), (7, 3 * 2**29), (2**63 - 25, 2)):
            state, reference = generator_state(seed), np.random.default_rng(seed)
            for _ in range(3):  # consecutive rows: the state carries over, half-words included
                ours = np.empty(4097, dtype=np.int32)
                _draw(state, n, ours, False)
                if not np.array_equal(ours, reference.integers(0, n, size=4097, dtype=np.int32)):
                    return False
    except (KeyError, TypeError, ValueError):
        return False
    return True
