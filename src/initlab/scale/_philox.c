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
 * Module initlab.scale._philox, one function:
 *
 *   fill(out, key, start) -> None
 *       out: a writable C-contiguous buffer of uint64 (its length in bytes a multiple of 8),
 *       receives words start .. start + len(out) - 1 of key's stream. The GIL is released
 *       while the words are computed.
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
    if (count && start > UINT64_MAX - (count - 1)) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_OverflowError, "start + len(out) - 1 must be < 2**64");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    philox_fill((uint64_t *)buf.buf, key, start, count);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fill", py_fill, METH_VARARGS,
     "fill(out, key, start): words start .. start + n - 1 (n = len(out)) of the Philox4x64-10 "
     "stream keyed (key, 0), NumPy's convention, into the writable uint64 buffer out."},
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
