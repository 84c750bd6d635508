"""Compressed-weight ``constexpr_*`` ops, decompressed exactly as the MIL spec defines them.

iOS 16 forms (packed ``uint8`` indices/masks plus an explicit ``shape``) and iOS 18 forms (unpacked sub-byte
indices, grouped/blockwise tables, sparse pairs) share op names; the inputs present tell them apart.
"""

from __future__ import annotations

import numpy as np

from mobilekit.emulate.coreml.registry import EmulatorError, op


def unpack_bits(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """Elements packed LSB first: element ``k`` holds bits ``k*nbits .. (k+1)*nbits - 1``, low bit first."""
    bits = np.unpackbits(np.asarray(packed).astype(np.uint8).ravel(), bitorder="little")[: count * nbits]
    return (bits.reshape(count, nbits).astype(np.int64) << np.arange(nbits)).sum(axis=1)


def expand_blocks(small: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Repeat each entry of a per-block tensor over its block: block size = shape[i] / small.shape[i]."""
    out = np.asarray(small)
    for ax, (n, m) in enumerate(zip(shape, out.shape, strict=True)):
        if n % m:
            raise EmulatorError(f"block layout {out.shape} does not divide tensor shape {shape}")
        out = np.repeat(out, n // m, axis=ax)
    return out


def blockwise(data: np.ndarray, scale: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    d = np.asarray(data).astype(np.float32)
    if offset is not None:
        d = d - expand_blocks(np.asarray(offset).astype(np.float32), d.shape)
    return (expand_blocks(np.asarray(scale).astype(np.float32), d.shape) * d).astype(np.asarray(scale).dtype)


def lut_dense_ios18(indices: np.ndarray, lut: np.ndarray, vector_axis: int | None) -> np.ndarray:
    """``lut`` is ``[g_0 .. g_{K-1}, P, V]``: a table per block of the indices tensor, entries of length V."""
    idx = np.asarray(indices).astype(np.int64)
    lut = np.asarray(lut)
    k = idx.ndim
    group_index = []
    for ax in range(k):
        block = idx.shape[ax] // lut.shape[ax]
        shape = [1] * k
        shape[ax] = idx.shape[ax]
        group_index.append((np.arange(idx.shape[ax]) // block).reshape(shape))
    vals = lut[(*group_index, idx)]  # indices.shape + [V]
    vsize = lut.shape[-1]
    if vsize == 1:
        return vals[..., 0]
    if vector_axis is None:
        raise EmulatorError("vector palettization without vector_axis")
    ax = int(vector_axis) % k
    vals = np.moveaxis(vals, -1, ax + 1)
    shape = list(idx.shape)
    shape[ax] *= vsize
    return vals.reshape(shape)


@op("constexpr_lut_to_dense")
def lut_to_dense(a):
    if a.get("shape") is not None:  # iOS 16: flat LUT, packed indices
        lut = np.asarray(a["lut"])
        shape = tuple(int(s) for s in np.atleast_1d(a["shape"]))
        nbits = int(np.log2(lut.size))
        return lut[unpack_bits(a["indices"], nbits, int(np.prod(shape)))].reshape(shape)
    va = a.get("vector_axis")
    return lut_dense_ios18(a["indices"], a["lut"], None if va is None else int(va))


@op("constexpr_affine_dequantize")
def affine_dequantize(a):
    q = np.asarray(a["quantized_data"]).astype(np.float32)
    axis = int(a["axis"]) % q.ndim
    shape = [1] * q.ndim
    zp = np.asarray(a["zero_point"]).astype(np.float32)
    sc = np.asarray(a["scale"])
    if zp.size > 1:
        shape[axis] = -1
    zp = zp.reshape(shape) if zp.size > 1 else zp
    shape = [1] * q.ndim
    if sc.size > 1:
        shape[axis] = -1
    sc32 = sc.astype(np.float32).reshape(shape) if sc.size > 1 else sc.astype(np.float32)
    return ((q - zp) * sc32).astype(sc.dtype)


@op("constexpr_blockwise_shift_scale")
def blockwise_shift_scale(a):
    return blockwise(a["data"], a["scale"], a.get("offset"))


@op("constexpr_sparse_to_dense")
def sparse_to_dense(a):
    nz = np.asarray(a["nonzero_data"])
    if a.get("shape") is not None:  # iOS 16: packed mask
        shape = tuple(int(s) for s in np.atleast_1d(a["shape"]))
        flat = np.zeros(int(np.prod(shape)), dtype=nz.dtype)
        flat[unpack_bits(a["mask"], 1, flat.size) != 0] = nz
        return flat.reshape(shape)
    mask = np.asarray(a["mask"])
    out = np.zeros(mask.shape, dtype=nz.dtype)
    out[mask != 0] = nz
    return out


@op("constexpr_lut_to_sparse")
def lut_to_sparse(a):
    mask = np.asarray(a["indices_mask"])
    idx = np.zeros(mask.shape, dtype=np.int64)
    idx[mask != 0] = np.asarray(a["indices_nonzero_data"])
    va = a.get("vector_axis")
    dense = lut_dense_ios18(idx, a["lut"], None if va is None else int(va))
    if va is not None and np.asarray(a["lut"]).shape[-1] > 1:
        mask = np.repeat(mask, np.asarray(a["lut"]).shape[-1], axis=int(va))
    return mask, dense[mask != 0].ravel()


@op("constexpr_sparse_blockwise_shift_scale")
def sparse_blockwise_shift_scale(a):
    mask = np.asarray(a["data_mask"])
    data = np.zeros(mask.shape, dtype=np.asarray(a["nonzero_data"]).dtype)
    data[mask != 0] = np.asarray(a["nonzero_data"])
    return mask, blockwise(data, a["scale"], a.get("offset"))[mask != 0].ravel()


@op("constexpr_cast")
def constexpr_cast(a):
    return np.asarray(a["source_val"]).astype({"fp32": np.float32, "fp16": np.float16}[str(a["output_dtype"])])
