/* Optional accelerator for the counter stream's words: Philox4x64-10 (Salmon, Moraes, Dror and
 * Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011) in NumPy's convention, so the
 * words are the ones numpy.random.Philox(key=[key, 0]).random_raw() gives, bit for bit:
 *
 *   word j of the stream is word j % 4 of the cipher block at counter c = j // 4 + 1
 *   (NumPy increments its 256-bit counter before encrypting), key (k0, k1) = (key, 0).
 *
 * A word index is a uint64, so c < 2**63 and only the counter's first 64-bit limb is ever
 * nonzero; the carry into the second limb is still propagated, as NumPy's 256-bit increment
 * does, so the function is defined for every 64-bit start.
 *
 * Module initlab.scale._philox, four functions:
 *
 *   fill(out, key, start) -> None
 *       out: a writable C-contiguous buffer of uint64 (its length in bytes a multiple of 8),
 *       receives words start .. start + len(out) - 1 of key's stream. The GIL is released
 *       while the words are computed.
 *
 *   v2_y(out, key, start, mode, c1, c2, add) -> None
 *       out: a writable C-contiguous float32 buffer, receives the first float32 step of stream
 *       v2's transform (initlab/scale/torch_stream.py) for elements start .. start + len(out) - 1
 *       of key's stream: element e owns the 32-bit half e % 2 (low first) of word e // 2, and
 *       s = its top 24 bits as a signed integer;
 *         mode 0 (normal):  y = float(2 s + 1) * 2**-24              (exact)
 *         mode 1 (affine):  y = float(s) * c1, then + c2 if add      (each step rounded in float32)
 *       c1 and c2 are rounded to float32 first, as torch rounds a Python scalar for a float32
 *       tensor. The words are computed here, in blocks that stay in L1.
 *
 *   bits_y(bits, out, mode, c1, c2, add) -> None
 *       the same from given element bits (a C-contiguous int32 buffer, one element each; out as
 *       long): the path for a chunk gathered from several runs of a sharded block.
 *
 *   finish(buf, flags, a, c, lo, hi) -> None
 *       in place on a writable float32 buffer: x = x * a if flags & 1, then x = x + c if
 *       flags & 2, then x = min(max(x, lo), hi) if flags & 4 (each step rounded in float32,
 *       the clip as torch's clamp_: a bound equal to x leaves x, so a signed zero is kept).
 *
 * Every float step is one IEEE operation in float32 (never a fused multiply-add: the build passes
 * -ffp-contract=off), so the values equal those of the torch ops they replace bit for bit
 * (tests/test_scale_philox.py compares them with the NumPy-words path). The GIL is released.
 *
 * No NumPy headers: the buffer protocol is enough, so building needs only a C compiler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define PHILOX_M0 UINT64_C(0xD2E7470EE14C6C93)
#define PHILOX_M1 UINT64_C(0xCA5A826395121157)
#define PHILOX_W0 UINT64_C(0x9E3779B97F4A7C15)
#define PHILOX_W1 UINT64_C(0xBB67AE8584CAA73B)

#if defined(__SIZEOF_INT128__)
static inline uint64_t mulhilo(uint64_t a, uint64_t b, uint64_t *hi)
{
    unsigned __int128 p = (unsigned __int128)a * b;
    *hi = (uint64_t)(p >> 64);
    return (uint64_t)p;
}
#elif defined(_MSC_VER) && defined(_M_X64)
#include <intrin.h>
static inline uint64_t mulhilo(uint64_t a, uint64_t b, uint64_t *hi)
{
    return _umul128(a, b, hi);
}
#else
/* portable: four 32 x 32 -> 64 partial products */
static inline uint64_t mulhilo(uint64_t a, uint64_t b, uint64_t *hi)
{
    uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32;
    uint64_t b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
    uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
    uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
    *hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    return a * b;
}
#endif

/* One round: two 64 x 64 -> 128-bit products, the words permuted and keyed. */
#define ROUND(k0, k1)                                                                             \
    do {                                                                                          \
        uint64_t hi0, hi1;                                                                        \
        uint64_t lo0 = mulhilo(PHILOX_M0, x0, &hi0);                                              \
        uint64_t lo1 = mulhilo(PHILOX_M1, x2, &hi1);                                              \
        x0 = hi1 ^ x1 ^ (k0);                                                                     \
        x1 = lo1;                                                                                 \
        x2 = hi0 ^ x3 ^ (k1);                                                                     \
        x3 = lo0;                                                                                 \
    } while (0)

/* The four words of the block at counter (c0, c1, 0, 0) under key (k[0], 0), the round keys
 * precomputed (k0[r] = key + r * W0, k1[r] = r * W1, modulo 2**64). The ten rounds are written
 * out: one straight dependency chain per block, and the out-of-order core overlaps consecutive
 * blocks (measured: interleaving several blocks by hand in arrays was slower, the lanes spilled
 * to the stack, and auto-vectorized variants slower still: x86 has no vector 64 x 64 -> 128
 * multiply). */
static inline void block(uint64_t c0, uint64_t c1, const uint64_t *k0, const uint64_t *k1,
                         uint64_t *w)
{
    uint64_t x0 = c0, x1 = c1, x2 = 0, x3 = 0;
    ROUND(k0[0], k1[0]);
    ROUND(k0[1], k1[1]);
    ROUND(k0[2], k1[2]);
    ROUND(k0[3], k1[3]);
    ROUND(k0[4], k1[4]);
    ROUND(k0[5], k1[5]);
    ROUND(k0[6], k1[6]);
    ROUND(k0[7], k1[7]);
    ROUND(k0[8], k1[8]);
    ROUND(k0[9], k1[9]);
    w[0] = x0;
    w[1] = x1;
    w[2] = x2;
    w[3] = x3;
}

/* counter (c0, c1) += 1, with NumPy's carry (c2, c3 stay 0 for any 64-bit word index) */
static inline void incr(uint64_t *c0, uint64_t *c1)
{
    if (++*c0 == 0)
        ++*c1;
}

/* Words start .. start + count - 1 of key's stream into out. */
static void philox_fill(uint64_t *out, uint64_t key, uint64_t start, size_t count)
{
    uint64_t w[4], k0[10], k1[10];
    uint64_t c0 = start / 4, c1 = 0; /* NumPy's state counter; block c0 + 1 comes first */
    unsigned skip = (unsigned)(start % 4);
    size_t done = 0;

    if (count == 0)
        return;
    k0[0] = key;
    k1[0] = 0;
    for (int r = 1; r < 10; r++) {
        k0[r] = k0[r - 1] + PHILOX_W0;
        k1[r] = k1[r - 1] + PHILOX_W1;
    }
    incr(&c0, &c1);
    if (skip) { /* the tail of the first block */
        block(c0, c1, k0, k1, w);
        incr(&c0, &c1);
        while (skip < 4 && done < count)
            out[done++] = w[skip++];
    }
    while (count - done >= 4) {
        block(c0, c1, k0, k1, out + done);
        incr(&c0, &c1);
        done += 4;
    }
    if (done < count) { /* the head of the last block */
        block(c0, c1, k0, k1, w);
        memcpy(out + done, w, (count - done) * sizeof(uint64_t));
    }
}

static int as_u64(PyObject *obj, const char *what, uint64_t *v)
{
    unsigned long long x;
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int", what);
        return -1;
    }
    x = PyLong_AsUnsignedLongLong(obj); /* OverflowError for negative or >= 2**64 */
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *v = (uint64_t)x;
    return 0;
}

/* An OverflowError unless the indices start .. start + n - 1 all fit in a uint64. */
static int check_end(uint64_t start, size_t n)
{
    if (n && start > UINT64_MAX - (n - 1)) {
        PyErr_SetString(PyExc_OverflowError, "start + len(out) - 1 must be < 2**64");
        return -1;
    }
    return 0;
}

static PyObject *py_fill(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    PyObject *key_obj, *start_obj;
    uint64_t key, start;
    size_t count;
    (void)self;

    if (!PyArg_ParseTuple(args, "w*OO:fill", &buf, &key_obj, &start_obj))
        return NULL;
    if (as_u64(key_obj, "key", &key) < 0 || as_u64(start_obj, "start", &start) < 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    if (buf.len % 8 != 0) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "out must hold whole uint64 words (length in bytes "
                                          "a multiple of 8)");
        return NULL;
    }
    count = (size_t)buf.len / 8;
    if (check_end(start, count) < 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    philox_fill((uint64_t *)buf.buf, key, start, count);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ stream v2's first step */
#define V2_NORMAL 0
#define V2_AFFINE 1
#define V2_BLOCK_ELEMS 512 /* elements per L1 block: 256 words, a multiple of a cipher block's 8 */

/* the top 24 bits of an element's 32 bits as a signed integer (-2**23 <= s < 2**23) */
static inline int32_t top24(uint32_t b)
{
    int32_t s = (int32_t)(b >> 8);
    return s - ((s & 0x800000) << 1);
}

static void y_from_bits(const uint32_t *b, float *y, size_t n, int mode, float c1, float c2,
                        int add)
{
    size_t i;
    if (mode == V2_NORMAL) {
        for (i = 0; i < n; i++)
            y[i] = (float)(2 * top24(b[i]) + 1) * (1.0f / 16777216.0f); /* 2**-24, exact */
    } else if (add) {
        for (i = 0; i < n; i++) {
            float t = (float)top24(b[i]) * c1;
            y[i] = t + c2;
        }
    } else {
        for (i = 0; i < n; i++)
            y[i] = (float)top24(b[i]) * c1;
    }
}

static void v2_y(float *y, uint64_t key, uint64_t start, size_t n, int mode, float c1, float c2,
                 int add)
{
    uint64_t w[V2_BLOCK_ELEMS / 2];
    uint32_t bits[V2_BLOCK_ELEMS];
    size_t done = 0;
    while (done < n) {
        uint64_t e = start + done;
        uint64_t base = e - e % 8; /* word base / 2 starts a cipher block: no partial blocks */
        size_t off = (size_t)(e - base);
        size_t m = n - done < V2_BLOCK_ELEMS - off ? n - done : V2_BLOCK_ELEMS - off;
        size_t nw = (off + m + 1) / 2, j;
        philox_fill(w, key, base / 2, nw);
        for (j = 0; j < nw; j++) {
            bits[2 * j] = (uint32_t)w[j];
            bits[2 * j + 1] = (uint32_t)(w[j] >> 32);
        }
        y_from_bits(bits + off, y + done, m, mode, c1, c2, add);
        done += m;
    }
}

static void finish_f32(float *y, size_t n, int flags, float a, float c, float lo, float hi)
{
    size_t i;
    int mul = flags & 1, add = flags & 2, clip = flags & 4;
    for (i = 0; i < n; i++) {
        float x = y[i];
        if (mul)
            x = x * a;
        if (add)
            x = x + c;
        if (clip) {
            if (lo > x)
                x = lo;
            if (hi < x)
                x = hi;
        }
        y[i] = x;
    }
}

static int get_4byte_buffer(PyObject *obj, Py_buffer *buf, const char *what, int writable)
{
    if (PyObject_GetBuffer(obj, buf, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (buf->len % 4 != 0) {
        PyBuffer_Release(buf);
        PyErr_Format(PyExc_ValueError, "%s must hold whole 4-byte elements (length in bytes a "
                                       "multiple of 4)", what);
        return -1;
    }
    return 0;
}

static int check_mode(int mode)
{
    if (mode != V2_NORMAL && mode != V2_AFFINE) {
        PyErr_Format(PyExc_ValueError, "mode must be 0 (normal) or 1 (affine), got %d", mode);
        return -1;
    }
    return 0;
}

static PyObject *py_v2_y(PyObject *self, PyObject *args)
{
    PyObject *out_obj, *key_obj, *start_obj;
    Py_buffer buf;
    uint64_t key, start;
    int mode, add;
    double c1, c2;
    size_t n;
    (void)self;

    if (!PyArg_ParseTuple(args, "OOOiddp:v2_y", &out_obj, &key_obj, &start_obj, &mode, &c1, &c2,
                          &add))
        return NULL;
    if (check_mode(mode) < 0 || as_u64(key_obj, "key", &key) < 0 ||
        as_u64(start_obj, "start", &start) < 0)
        return NULL;
    if (get_4byte_buffer(out_obj, &buf, "out", 1) < 0)
        return NULL;
    n = (size_t)buf.len / 4;
    if (check_end(start, n) < 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    v2_y((float *)buf.buf, key, start, n, mode, (float)c1, (float)c2, add);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    Py_RETURN_NONE;
}

static PyObject *py_bits_y(PyObject *self, PyObject *args)
{
    PyObject *bits_obj, *out_obj;
    Py_buffer bits, out;
    int mode, add;
    double c1, c2;
    (void)self;

    if (!PyArg_ParseTuple(args, "OOiddp:bits_y", &bits_obj, &out_obj, &mode, &c1, &c2, &add))
        return NULL;
    if (check_mode(mode) < 0 || get_4byte_buffer(bits_obj, &bits, "bits", 0) < 0)
        return NULL;
    if (get_4byte_buffer(out_obj, &out, "out", 1) < 0) {
        PyBuffer_Release(&bits);
        return NULL;
    }
    if (bits.len != out.len) {
        PyBuffer_Release(&bits);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "bits and out must have the same number of elements");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    y_from_bits((const uint32_t *)bits.buf, (float *)out.buf, (size_t)out.len / 4, mode,
                (float)c1, (float)c2, add);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bits);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyObject *py_finish(PyObject *self, PyObject *args)
{
    PyObject *obj;
    Py_buffer buf;
    int flags;
    double a, c, lo, hi;
    (void)self;

    if (!PyArg_ParseTuple(args, "Oidddd:finish", &obj, &flags, &a, &c, &lo, &hi))
        return NULL;
    if (flags < 0 || flags > 7) {
        PyErr_Format(PyExc_ValueError, "flags must be in 0..7 (1 multiply, 2 add, 4 clip), "
                                       "got %d", flags);
        return NULL;
    }
    if (get_4byte_buffer(obj, &buf, "buf", 1) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    finish_f32((float *)buf.buf, (size_t)buf.len / 4, flags, (float)a, (float)c, (float)lo,
               (float)hi);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fill", py_fill, METH_VARARGS,
     "fill(out, key, start): words start .. start + n - 1 (n = len(out)) of the Philox4x64-10 "
     "stream keyed (key, 0), NumPy's convention, into the writable uint64 buffer out."},
    {"v2_y", py_v2_y, METH_VARARGS,
     "v2_y(out, key, start, mode, c1, c2, add): stream v2's first float32 step for elements "
     "start .. start + n - 1 (n = len(out)) into the writable float32 buffer out (mode 0 normal, "
     "1 affine; see the module's source)."},
    {"bits_y", py_bits_y, METH_VARARGS,
     "bits_y(bits, out, mode, c1, c2, add): the same step from given int32 element bits."},
    {"finish", py_finish, METH_VARARGS,
     "finish(buf, flags, a, c, lo, hi): in place x * a (flags & 1), + c (& 2), clip into "
     "[lo, hi] (& 4), each step rounded in float32."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_philox",
    "Compiled Philox4x64-10 words for initlab's counter stream (bit-identical to NumPy's "
    "Philox).",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__philox(void)
{
    return PyModule_Create(&module);
}
