"""Row operations on 64-byte vectors, for the factor rows of the MF kernels.

``row_dot(A, a, B, b)`` is ``A[a] . B[b]`` in the arrays' dtype; ``row_dot64`` the same in
float64 (float32 chunks are widened before they are multiplied); ``row_step(A, a, B, b, s,
l)`` is the paired SGD update ``A[a] <- s A[a] + l B[b]``, ``B[b] <- s B[b] + l A_old[a]``;
``row_axpby(A, a, B, b, s, l)`` is its one-sided half ``A[a] <- s A[a] + l B[b]``. Each is a
plain loop for any array, and, for C-contiguous 2-D float32 or float64 arrays of one dtype,
LLVM vector code written here: ``<16 x float>`` / ``<8 x double>`` chunks (one AVX-512
register), fused multiply-adds, and a masked load/store for the last partial chunk.

Why not leave it to LLVM: the auto-vectorised loops of :func:`fastgrad.kernels.mf_sgd_step`
used 32-byte vectors, a run-time alias check between the two rows and a scalar remainder
loop, and on a 100-factor row that was 1.3-1.4x slower than this code (2-vCPU Intel Xeon,
AVX-512). The summation order of :func:`row_dot` is fixed (chunk ``c`` into accumulator
``c mod 2``, the partial chunk too, then a halving horizontal sum), so it depends on the
row length only -- not on alignment or the thread count; its result differs from a
sequential loop's in the last bits, and zero padding of the rows to whole chunks changes
none. On a CPU without 512-bit registers LLVM splits the vectors into the ones it has,
with the same results wherever it has fused multiply-adds.

The four operations are inlined into their caller by Numba (``overload(..., inline="always")``),
so the plain loops take the caller's ``fastmath`` flags. Left to LLVM, ``row_step`` was not
inlined: every SGD step called it out of line with 16 arguments on the stack and four
reference-count calls on the arrays, which took a third of a float32 100-factor step (a
20-epoch ML-100k fit 26.2 ms -> 21.5 ms on 2 threads, 58.5 -> 40.0 ms on one; 2-vCPU AMD
EPYC, Zen 4; the same bits).
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = ["row_dot", "row_dot64", "row_step", "row_axpby", "VECTOR_BYTES"]

VECTOR_BYTES = 64
_I32 = ir.IntType(32)
_I1 = ir.IntType(1)


def _vectorisable(*arrays):
    first = arrays[0]
    return all(isinstance(x, types.Array) and x.ndim == 2 and x.layout == "C"
               and x.dtype in (types.float32, types.float64) and x.dtype == first.dtype
               for x in arrays)


def _lanes(dtype):
    if dtype == types.float32:
        return ir.FloatType(), VECTOR_BYTES // 4, 4
    return ir.DoubleType(), VECTOR_BYTES // 8, 8


class _Rows:
    """Code-generation helpers for one dtype's vector chunks."""

    def __init__(self, context, builder, dtype):
        self.context = context
        self.builder = builder
        self.scal, self.w, self.size = _lanes(dtype)
        self.vec = ir.VectorType(self.scal, self.w)
        self.intp = context.get_value_type(types.intp)
        mod = builder.module
        vp = ir.PointerType(self.vec)
        mask = ir.VectorType(_I1, self.w)
        tag = f"v{self.w}f{self.size * 8}"
        self.fma = cgutils.get_or_insert_function(
            mod, ir.FunctionType(self.vec, [self.vec] * 3), f"llvm.fmuladd.{tag}")
        self.mload = cgutils.get_or_insert_function(
            mod, ir.FunctionType(self.vec, [vp, _I32, mask, self.vec]), f"llvm.masked.load.{tag}.p0")
        self.mstore = cgutils.get_or_insert_function(
            mod, ir.FunctionType(ir.VoidType(), [self.vec, vp, _I32, mask]),
            f"llvm.masked.store.{tag}.p0")
        self.align = ir.Constant(_I32, self.size)
        self.zero = ir.Constant(self.vec, [0.0] * self.w)
        self.lane_index = ir.Constant(ir.VectorType(self.intp, self.w), list(range(self.w)))

    def row(self, aryty, ary_val, r):
        """Pointer to the first element of row ``r`` and the row length."""
        ctx, bld = self.context, self.builder
        ary = ctx.make_array(aryty)(ctx, bld, ary_val)
        n, k = cgutils.unpack_tuple(bld, ary.shape, 2)
        stride = cgutils.unpack_tuple(bld, ary.strides, 2)[0]
        # a negative row counts from the end, as in A[r] (no bounds check, as in Numba)
        r = bld.select(bld.icmp_signed("<", r, ir.Constant(self.intp, 0)), bld.add(r, n), r)
        base = bld.ptrtoint(ary.data, self.intp)
        addr = bld.add(base, bld.mul(r, stride))
        return bld.inttoptr(addr, ir.PointerType(self.scal)), k

    def splat(self, x, vt=None):
        """A vector (of type ``vt``, default the chunk type) with every lane ``x``."""
        bld = self.builder
        vt = self.vec if vt is None else vt
        v = bld.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(_I32, 0))
        return bld.shuffle_vector(v, ir.Constant(vt, ir.Undefined),
                                  ir.Constant(ir.VectorType(_I32, self.w), [0] * self.w))

    def ptr(self, row, f):
        return self.builder.bitcast(self.builder.gep(row, [f]), ir.PointerType(self.vec))

    def load(self, row, f):
        return self.builder.load(self.ptr(row, f), align=self.size)

    def store(self, v, row, f):
        self.builder.store(v, self.ptr(row, f), align=self.size)

    def tail_mask(self, rem):
        """Lanes ``0..rem-1`` of a chunk."""
        return self.builder.icmp_signed(
            "<", self.lane_index, self.splat(rem, ir.VectorType(self.intp, self.w)))

    def mload_(self, row, f, mask):
        return self.builder.call(self.mload, [self.ptr(row, f), self.align, mask, self.zero])

    def mstore_(self, v, row, f, mask):
        self.builder.call(self.mstore, [v, self.ptr(row, f), self.align, mask])

    def hsum(self, v):
        """Sum of the lanes: halves added pairwise until one lane is left (fixed order)."""
        bld = self.builder
        n = v.type.count
        while n > 1:
            h = n // 2
            lo = bld.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, h), list(range(h))))
            hi = bld.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, h), list(range(h, n))))
            v = bld.fadd(lo, hi)
            n = h
        return bld.extract_element(v, ir.Constant(_I32, 0))

    def chunks(self, k):
        """``(n_full, rem)``: full chunks of a row of length ``k`` and the partial one's length."""
        bld = self.builder
        wc = ir.Constant(self.intp, self.w)
        return bld.sdiv(k, wc), bld.srem(k, wc)


def _rows_codegen(context, builder, sig, args):
    r = _Rows(context, builder, sig.args[0].dtype)
    ia = context.cast(builder, args[1], sig.args[1], types.intp)
    ib = context.cast(builder, args[3], sig.args[3], types.intp)
    pa, k = r.row(sig.args[0], args[0], ia)
    pb, _ = r.row(sig.args[2], args[2], ib)
    return r, pa, pb, k


def _dot_intrinsic(acc64):
    def typer(typingctx, A, a, B, b):
        if not (_vectorisable(A, B) and isinstance(a, types.Integer)
                and isinstance(b, types.Integer)):
            return None
        rtype = types.float64 if acc64 else A.dtype

        def codegen(context, builder, sig, args):
            r, pa, pb, k = _rows_codegen(context, builder, sig, args)
            widen = acc64 and r.size == 4
            avec = ir.VectorType(ir.DoubleType(), r.w) if widen else r.vec
            fma = r.fma
            if widen:
                fma = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(avec, [avec] * 3), f"llvm.fmuladd.v{r.w}f64")

            def prod(x, y, acc):
                if widen:
                    x = builder.fpext(x, avec)
                    y = builder.fpext(y, avec)
                return builder.call(fma, [x, y, builder.load(acc)])

            nfull, rem = r.chunks(k)
            intp = r.intp
            zero = ir.Constant(avec, [0.0] * r.w)
            acc0 = cgutils.alloca_once_value(builder, zero)
            acc1 = cgutils.alloca_once_value(builder, zero)
            w = ir.Constant(intp, r.w)
            npair = builder.sdiv(nfull, ir.Constant(intp, 2))
            with cgutils.for_range(builder, npair, intp=intp) as loop:
                f0 = builder.mul(loop.index, ir.Constant(intp, 2 * r.w))
                f1 = builder.add(f0, w)
                builder.store(prod(r.load(pa, f0), r.load(pb, f0), acc0), acc0)
                builder.store(prod(r.load(pa, f1), r.load(pb, f1), acc1), acc1)
            done = builder.mul(npair, ir.Constant(intp, 2 * r.w))
            odd = builder.icmp_signed("!=", builder.mul(npair, ir.Constant(intp, 2)), nfull)
            with builder.if_then(odd):
                builder.store(prod(r.load(pa, done), r.load(pb, done), acc0), acc0)
            tail = builder.mul(nfull, w)
            with builder.if_then(builder.icmp_signed(">", rem, ir.Constant(intp, 0))):
                # chunk c goes to accumulator c % 2, the partial one too: zero padding to whole
                # chunks then changes no bit of the result
                m = r.tail_mask(rem)
                acc = builder.select(odd, acc1, acc0)
                builder.store(prod(r.mload_(pa, tail, m), r.mload_(pb, tail, m), acc), acc)
            return r.hsum(builder.fadd(builder.load(acc0), builder.load(acc1)))

        return rtype(A, a, B, b), codegen

    return typer


_vdot = intrinsic(_dot_intrinsic(False))
_vdot64 = intrinsic(_dot_intrinsic(True))


def _step_intrinsic(both):
    def typer(typingctx, A, a, B, b, s, l):
        if not (_vectorisable(A, B) and isinstance(a, types.Integer)
                and isinstance(b, types.Integer) and isinstance(s, (types.Float, types.Integer))
                and isinstance(l, (types.Float, types.Integer))):
            return None
        dtype = A.dtype

        def codegen(context, builder, sig, args):
            r, pa, pb, k = _rows_codegen(context, builder, sig, args)
            vs = r.splat(context.cast(builder, args[4], sig.args[4], dtype))
            vl = r.splat(context.cast(builder, args[5], sig.args[5], dtype))
            nfull, rem = r.chunks(k)
            intp = r.intp

            def update(x, y):
                newx = builder.call(r.fma, [vl, y, builder.fmul(vs, x)])
                newy = builder.call(r.fma, [vl, x, builder.fmul(vs, y)]) if both else None
                return newx, newy

            with cgutils.for_range(builder, nfull, intp=intp) as loop:
                f = builder.mul(loop.index, ir.Constant(intp, r.w))
                x = r.load(pa, f)
                y = r.load(pb, f)
                nx, ny = update(x, y)
                r.store(nx, pa, f)
                if both:
                    r.store(ny, pb, f)
            tail = builder.mul(nfull, ir.Constant(intp, r.w))
            with builder.if_then(builder.icmp_signed(">", rem, ir.Constant(intp, 0))):
                m = r.tail_mask(rem)
                x = r.mload_(pa, tail, m)
                y = r.mload_(pb, tail, m)
                nx, ny = update(x, y)
                r.mstore_(nx, pa, tail, m)
                if both:
                    r.mstore_(ny, pb, tail, m)
            return context.get_dummy_value()

        return types.void(A, a, B, b, s, l), codegen

    return typer


_vstep = intrinsic(_step_intrinsic(True))
_vaxpby = intrinsic(_step_intrinsic(False))


# ----------------------------------------------------------------------------- public stubs
def row_dot(A, a, B, b):
    """``A[a] . B[b]`` in the arrays' dtype (for use inside ``@njit`` code)."""
    return (A[a] * B[b]).sum()


def row_dot64(A, a, B, b):
    """``A[a] . B[b]`` accumulated in float64 (float32 rows are widened chunk by chunk)."""
    return float(A[a].astype(float) @ B[b].astype(float))


def row_step(A, a, B, b, s, l):
    """``A[a], B[b] <- s A[a] + l B[b], s B[b] + l A[a]`` (both from the old rows), in place."""
    x = A[a].copy()
    A[a] = s * x + l * B[b]
    B[b] = s * B[b] + l * x


def row_axpby(A, a, B, b, s, l):
    """``A[a] <- s A[a] + l B[b]``, in place."""
    A[a] = s * A[a] + l * B[b]


@overload(row_dot, inline="always")
def _ol_row_dot(A, a, B, b):
    if _vectorisable(A, B):
        return lambda A, a, B, b: _vdot(A, a, B, b)

    def impl(A, a, B, b):
        acc = A.dtype.type(0.0) * B.dtype.type(0.0)
        for f in range(A.shape[1]):
            acc += A[a, f] * B[b, f]
        return acc
    return impl


@overload(row_dot64, inline="always")
def _ol_row_dot64(A, a, B, b):
    if _vectorisable(A, B):
        return lambda A, a, B, b: _vdot64(A, a, B, b)

    def impl(A, a, B, b):
        acc = 0.0
        for f in range(A.shape[1]):
            acc += np.float64(A[a, f]) * np.float64(B[b, f])
        return acc
    return impl


def _overload_step(stub, vector, both):
    """Register ``stub``'s implementation: ``vector`` for C-contiguous rows of one float
    dtype, else a loop (``both``: update ``B[b]`` too)."""
    @overload(stub, inline="always")
    def _ol(A, a, B, b, s, l):
        if _vectorisable(A, B):
            return lambda A, a, B, b, s, l: vector(A, a, B, b, s, l)

        def impl(A, a, B, b, s, l):
            sa = A.dtype.type(s)
            la = A.dtype.type(l)
            sb = B.dtype.type(s)
            lb = B.dtype.type(l)
            for f in range(A.shape[1]):
                x = A[a, f]
                y = B[b, f]
                A[a, f] = sa * x + la * y
                if both:
                    B[b, f] = sb * y + lb * x
        return impl
    return _ol


_overload_step(row_step, _vstep, True)
_overload_step(row_axpby, _vaxpby, False)
