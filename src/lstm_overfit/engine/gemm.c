/* The engine's matrix product: C (m x n) = op(A) (m x k) @ B (k x n), float32, row-major.

   Why not OpenBLAS: its kernels are chosen by CPU at load time and add in an order of their
   own (AVX-512 kernels split and regroup the sums differently from AVX2 ones), so the same
   training gives other bits on another CPU generation unless every machine is held to the
   slowest common kernel set. Here every element of C is one chain of fused multiply-adds
   over p = 0, 1, ..., k-1, in order, starting from 0:

       c[i][j] = fma(a[i][k-1], b[k-1][j], ... fma(a[i][1], b[1][j], fma(a[i][0], b[0][j], 0)))

   A fused multiply-add rounds once, exactly as IEEE 754 defines it, in every instruction set
   (fmaf in scalar code, vfmadd in AVX2 and AVX-512), and vectors only ever run across j, the
   independent output columns. So the bits are the same for every vector width: an AVX-512
   machine runs 16 columns a step and gets what an AVX2 machine gets with 8, or plain C with 1.
   tests/engine/test_gemm.py forces each path on the same inputs and compares the bits.

   op(A)[i][p] = a[i * lda + p], or a[p * lda + i] when trans_a (A stored transposed).

   Below the product, the LSTM cell's elementwise work of a time step (lstm_cell_forward,
   lstm_cell_backward), vectorized by hand for the same reason of speed and bits. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t i64;

#define A_AT(a, lda, trans, i, p) ((trans) ? (a)[(p) * (lda) + (i)] : (a)[(i) * (lda) + (p)])

/* Columns [j0, j1) one at a time: the tails narrower than a vector, and the reference path. */
static void gemm_scalar(int trans, i64 m, i64 j0, i64 j1, i64 k, const float *a, i64 lda,
                        const float *b, i64 ldb, float *c, i64 ldc) {
    for (i64 i = 0; i < m; i++)
        for (i64 j = j0; j < j1; j++) {
            float acc = 0.0f;
            for (i64 p = 0; p < k; p++)
                acc = fmaf(A_AT(a, lda, trans, i, p), b[p * ldb + j], acc);
            c[i * ldc + j] = acc;
        }
}

/* Work space for the packed operands, one per thread (runs train on threads side by side),
   grown as needed and kept: a step calls the product hundreds of times. */
static __thread float *scratch_buf;
static __thread size_t scratch_len;

static float *scratch(size_t floats) {
    if (floats > scratch_len) {
        free(scratch_buf);
        scratch_buf = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
        scratch_len = scratch_buf ? floats : 0;
    }
    return scratch_buf;
}

/* op(A) as tiles of MR rows, each tile k x MR contiguous (rows past m are zero), so the
   kernel reads A as one forward stream whatever its layout. Copying moves no arithmetic. */
static void pack_a(int trans, int MR, i64 m, i64 k, const float *a, i64 lda, float *out) {
    for (i64 i0 = 0; i0 < m; i0 += MR)
        for (i64 p = 0; p < k; p++)
            for (int r = 0; r < MR; r++)
                *out++ = i0 + r < m ? A_AT(a, lda, trans, i0 + r, p) : 0.0f;
}

/* Columns [j, j + nr) of B as one k x nr block, contiguous. */
static void pack_b(i64 k, i64 nr, const float *b, i64 ldb, float *out) {
    for (i64 p = 0; p < k; p++) {
        memcpy(out, b + p * ldb, (size_t)nr * sizeof(float));
        out += nr;
    }
}

/* The same two copies with AVX2 moves, for the AVX2 path: the scalar pack_a moved a float
   in ~0.5 ns (8 us of a 52 us 32 x 128 x 512 product on an AVX2 machine) and pack_b's small
   memcpy starts slowly. Tiles of 4 rows (MR256, checked below), whole ones 8 columns of A at a
   time as one 4 x 8 transpose in registers; a partial tile as pack_a does. */
static __attribute__((target("avx2"))) void pack_a_avx2(int trans, int MR, i64 m, i64 k,
                                                        const float *a, i64 lda, float *out) {
    (void)MR;
    const i64 whole = m / 4 * 4;
    for (i64 i0 = 0; i0 < whole; i0 += 4) {
        i64 p = 0;
        if (trans) {
            for (; p < k; p++, out += 4) _mm_storeu_ps(out, _mm_loadu_ps(a + p * lda + i0));
            continue;
        }
        const float *r0 = a + i0 * lda, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
        for (; p + 8 <= k; p += 8, out += 32) {
            __m256 x0 = _mm256_loadu_ps(r0 + p), x1 = _mm256_loadu_ps(r1 + p);
            __m256 x2 = _mm256_loadu_ps(r2 + p), x3 = _mm256_loadu_ps(r3 + p);
            __m256 t0 = _mm256_unpacklo_ps(x0, x1), t1 = _mm256_unpackhi_ps(x0, x1);
            __m256 t2 = _mm256_unpacklo_ps(x2, x3), t3 = _mm256_unpackhi_ps(x2, x3);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            _mm256_storeu_ps(out, _mm256_permute2f128_ps(u0, u1, 0x20));
            _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
            _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
            _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
        }
        for (; p < k; p++, out += 4) {
            out[0] = r0[p], out[1] = r1[p], out[2] = r2[p], out[3] = r3[p];
        }
    }
    if (whole < m) pack_a(trans, 4, m - whole, k, trans ? a + whole : a + whole * lda, lda, out);
}

static __attribute__((target("avx2"))) void pack_b_avx2(i64 k, i64 nr, const float *b, i64 ldb,
                                                        float *out) {
    for (i64 p = 0; p < k; p++, out += nr)
        for (i64 q = 0; q < nr; q += 8) /* nr: whole vectors of the AVX2 path */
            _mm256_storeu_ps(out + q, _mm256_loadu_ps(b + p * ldb + q));
}

/* One register tile: MR rows by NV vectors of columns, accumulated over k from packed A
   (k x MR) and B's rows (ldb apart); the first `rows` rows are stored. It starts from 0, or,
   unless `first`, from what C holds: the chain of an earlier block of k continued (a float
   stored and loaded back is the same float, so the sums are the one chain above). MR and NV
   are constants where it is called, so the compiler keeps the tile in registers. */
#define TILE(NAME, TARGET, VEC, WIDTH, ZERO, LOAD, SET1, FMA, STORE)                        \
    static inline __attribute__((always_inline, target(TARGET))) void NAME(                 \
        const int MR, const int NV, i64 rows, i64 k, const float *ap, const float *bp,       \
        i64 ldb, float *c, i64 ldc, int first) {                                             \
        VEC acc[16][4];                                                                       \
        for (int i = 0; i < MR; i++)                                                          \
            for (int v = 0; v < NV; v++)                                                      \
                acc[i][v] = first || i >= rows ? ZERO() : LOAD(c + i * ldc + WIDTH * v);      \
        for (i64 p = 0; p < k; p++) {                                                         \
            VEC bv[4];                                                                        \
            for (int v = 0; v < NV; v++) bv[v] = LOAD(bp + WIDTH * v);                        \
            for (int i = 0; i < MR; i++) {                                                    \
                VEC ai = SET1(ap[i]);                                                         \
                for (int v = 0; v < NV; v++) acc[i][v] = FMA(ai, bv[v], acc[i][v]);           \
            }                                                                                 \
            ap += MR;                                                                         \
            bp += ldb;                                                                        \
        }                                                                                     \
        for (int i = 0; i < MR; i++)                                                          \
            if (i < rows)                                                                     \
                for (int v = 0; v < NV; v++) STORE(c + i * ldc + WIDTH * v, acc[i][v]);       \
    }

TILE(tile512, "avx512f,fma", __m512, 16, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps,
     _mm512_fmadd_ps, _mm512_storeu_ps)
TILE(tile256, "avx2,fma", __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps,
     _mm256_fmadd_ps, _mm256_storeu_ps)

/* Column blocks of NV vectors, every row tile of the packed A over one block before the next.
   With many row tiles a block of B is packed first (k x nr, contiguous: one stream instead of
   k rows a page apart); with a few, reading B in place costs less than the copy, unless the
   caller packed B once for many products (`packed`, laid out by lstm_gemm_pack). B read in
   place with a long k runs in slices of KC rows, every row tile over a slice before the next:
   the slice (KC rows of nr columns, ldb apart) stays in the L1 cache, where all k rows did not
   (a small model's weight gradients, 32 x 128 x 992 for the sentiment LSTM(32): ~50 -> ~61
   GFLOP/s on the AVX2 machine; from panels, slices measured no faster). */
#define PATH(NAME, TARGET, TILEFN, WIDTH, MR, NV, PACK_A, PACK_B)                            \
    static __attribute__((target(TARGET))) void NAME(int trans, i64 m, i64 n, i64 k,         \
                                                     const float *a, i64 lda, const float *b, \
                                                     i64 ldb, float *c, i64 ldc,             \
                                                     const float *packed) {                  \
        const i64 tiles = (m + MR - 1) / MR, vec_cols = n / WIDTH * WIDTH;                    \
        const i64 a_len = (tiles * MR * k + 15) / 16 * 16; /* keeps packed B 64-byte aligned */ \
        const int pack = packed == NULL && m > 64;                                            \
        float *ap = scratch((size_t)(a_len + (pack ? k * WIDTH * NV : 0)));                   \
        if (ap == NULL) abort();                                                              \
        float *bp = ap + a_len;                                                               \
        if (vec_cols) PACK_A(trans, MR, m, k, a, lda, ap);                                    \
        i64 j = 0;                                                                            \
        for (int nv = NV; nv >= 1; nv--) {                                                    \
            const i64 nr = WIDTH * nv;                                                        \
            for (; j + nr <= n; j += nr) {                                                    \
                if (pack) PACK_B(k, nr, b + j, ldb, bp);                                      \
                const float *bb = packed ? packed + k * j : pack ? bp : b + j;                \
                const i64 bs = packed || pack ? nr : ldb;                                     \
                const i64 slice = packed || pack ? (k ? k : 1) : KC;                          \
                for (i64 p0 = 0; p0 == 0 || p0 < k; p0 += slice) { /* once when k is 0 */     \
                    const i64 kc = k - p0 < slice ? k - p0 : slice;                           \
                    for (i64 t = 0; t < tiles; t++) {                                         \
                        float *ct = c + t * MR * ldc + j;                                     \
                        const float *at = ap + t * MR * k + p0 * MR, *bt = bb + p0 * bs;      \
                        const i64 rows = m - t * MR;                                          \
                        switch (nv) { /* a constant in each call: the tile stays in registers */ \
                        case 4: TILEFN(MR, 4, rows, kc, at, bt, bs, ct, ldc, p0 == 0); break; \
                        case 3: TILEFN(MR, 3, rows, kc, at, bt, bs, ct, ldc, p0 == 0); break; \
                        case 2: TILEFN(MR, 2, rows, kc, at, bt, bs, ct, ldc, p0 == 0); break; \
                        default: TILEFN(MR, 1, rows, kc, at, bt, bs, ct, ldc, p0 == 0); break; \
                        }                                                                     \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        gemm_scalar(trans, m, vec_cols, n, k, a, lda, b, ldb, c, ldc);                        \
    }

/* Tile sizes measured on the model's shapes (bench/speed.py): AVX-512 has 32 registers, 8 x 2
   accumulators fill 16 and 8 rows divide a batch of 32; AVX2 has 16, 4 x 3 fill 12. A slice
   of k: 128 rows of a block of B read in place touch 16 KB (two cache lines a row, AVX2) to
   24 KB (AVX-512), within a 32 KB L1. */
#ifndef KC
#define KC 128
#endif
#ifndef MR512
#define MR512 8
#define NV512 2
#define MR256 4
#define NV256 3
#endif
_Static_assert(MR256 == 4, "pack_a_avx2 packs A in tiles of 4 rows");
PATH(gemm_avx512, "avx512f,fma", tile512, 16, MR512, NV512, pack_a, pack_b)
PATH(gemm_avx2, "avx2,fma", tile256, 8, MR256, NV256, pack_a_avx2, pack_b_avx2)

static void gemm_plain(int trans, i64 m, i64 n, i64 k, const float *a, i64 lda, const float *b,
                       i64 ldb, float *c, i64 ldc, const float *packed) {
    (void)packed;
    gemm_scalar(trans, m, 0, n, k, a, lda, b, ldb, c, ldc);
}

typedef void (*gemm_fn)(int, i64, i64, i64, const float *, i64, const float *, i64, float *,
                        i64, const float *);

static const char *PATHS[] = {"avx512", "avx2", "scalar"};
static const gemm_fn FNS[] = {gemm_avx512, gemm_avx2, gemm_plain};
static const int WIDTHS[] = {16, 8, 0}, BLOCKS[] = {NV512, NV256, 0}; /* vector columns */

/* The widest path this CPU runs, unless LSTM_OVERFIT_GEMM names a narrower one (the tests
   compare paths; the bench measures what each is worth). -1: the name is not a path or this
   CPU cannot run it. */
static int choose(void) {
    __builtin_cpu_init();
    int best = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") ? 0
               : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1
                                                                                    : 2;
    const char *want = getenv("LSTM_OVERFIT_GEMM");
    if (want == NULL || *want == '\0') return best;
    for (int i = 0; i < 3; i++)
        if (strcmp(want, PATHS[i]) == 0) return i >= best ? i : -1;
    return -1;
}

static int chosen = -2;

/* The path in use: "avx512", "avx2", "scalar", or NULL if LSTM_OVERFIT_GEMM asks for one
   this CPU cannot run (or names none). */
const char *lstm_gemm_path(void) {
    if (chosen == -2) chosen = choose();
    return chosen < 0 ? NULL : PATHS[chosen];
}

/* B packed once for many products by it: a step multiplies by the recurrent kernel (and by
   its transpose) at every time step of the batch, and a panel of B read in place, k rows
   a page apart, costs the small products there about a third of their speed (32 x 128 x 512
   on AVX2: ~70 GFLOP/s in place, ~100 from panels). The panels are the PATH's column blocks,
   each k x nr contiguous, the one of columns [j, j + nr) at k * j; the columns right of the
   last whole vector are read from B itself. Packing moves no arithmetic: the same bits. */
i64 lstm_gemm_packed_size(i64 k, i64 n) {
    const i64 width = WIDTHS[chosen];
    return width ? k * (n / width * width) : 0;
}

void lstm_gemm_pack(i64 k, i64 n, const float *b, i64 ldb, float *out) {
    const i64 width = WIDTHS[chosen];
    i64 j = 0;
    for (int nv = BLOCKS[chosen]; width && nv >= 1; nv--)
        for (const i64 nr = width * nv; j + nr <= n; j += nr) pack_b(k, nr, b + j, ldb, out + k * j);
}

/* Idle cores lend a hand. Runs train one per thread; when fewer runs are left than cores (the
   last of three seeds on two cores), the engine lends the idle cores to the products of the
   runs still training: a product splits its columns (or rows) between the caller and the
   helpers it can claim. Every element is still the one chain above, computed whole by one
   thread, so the bits do not depend on how a product is split or on who helps.

   A helper is a thread that spins while lent (its core has nothing else to do) and sleeps on a
   condition variable otherwise. The engine raises the count as its workers run out of runs
   and sets it back to 0 only once no product is running.

   A lent core may still be taken by someone else: the stage's side process logging the runs
   that have finished, its figures, another process on the machine, the host. So nobody waits
   on a thread that is not running. A part that no helper has started yet is taken back by the
   caller once its own part is done; and a wait that lasts (an idle helper, a caller whose
   helper was interrupted mid-part) hands the core over (`relax`) instead of spinning it away.
   With one busy process beside a stage, three runs of LSTM(32) with one core lent at the end
   trained in ~4.3 s, against ~3.1 s with no core lent, when helpers only spun. */
#define MAX_HELPERS 63
#define MIN_SPLIT_WORK (1 << 16) /* m * n * k below this: a hand-off costs more than it saves */
#define SPIN_PAUSES 1024 /* ~20-70 us of pauses before a waiting thread yields its core */
enum { FREE, CLAIMED, READY, RUNNING, DONE };

/* One step of a wait: a pause while it is short (a hand-off takes well under a microsecond),
   then `sched_yield`, which returns at once unless another thread wants this core. */
static inline void relax(unsigned *spins) {
    if (*spins < SPIN_PAUSES) {
        ++*spins;
        _mm_pause();
    } else {
        sched_yield();
    }
}

typedef struct {
    _Atomic int state;
    int trans;
    i64 m, n, k, lda, ldb, ldc;
    const float *a, *b, *packed;
    float *c;
    char pad[64];
} helper_t;

static helper_t helpers[MAX_HELPERS];
static _Atomic int lent;
static _Atomic long long taken_back; /* parts the callers took back (tests read it) */
static int spawned;
static pthread_mutex_t lend_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lend_cv = PTHREAD_COND_INITIALIZER;

/* A part as it was handed out, run by whoever starts it: its helper, or the caller. */
static void run_part(const helper_t *h) {
    FNS[chosen](h->trans, h->m, h->n, h->k, h->a, h->lda, h->b, h->ldb, h->c, h->ldc, h->packed);
}

static void *helper_main(void *arg) {
    const int index = (int)(intptr_t)arg;
    helper_t *h = &helpers[index];
    unsigned spins = 0;
    for (;;) {
        if (index >= atomic_load_explicit(&lent, memory_order_acquire)) {
            pthread_mutex_lock(&lend_mu);
            while (index >= atomic_load(&lent)) pthread_cond_wait(&lend_cv, &lend_mu);
            pthread_mutex_unlock(&lend_mu);
        }
        int ready = READY; /* started here, or taken back by the caller: never both */
        if (atomic_load_explicit(&h->state, memory_order_relaxed) == READY &&
            atomic_compare_exchange_strong_explicit(&h->state, &ready, RUNNING,
                                                    memory_order_acquire, memory_order_relaxed)) {
            run_part(h);
            atomic_store_explicit(&h->state, DONE, memory_order_release);
            spins = 0;
        } else {
            relax(&spins);
        }
    }
    return NULL;
}

/* Lend `count` helpers to the products (0: none). Returns how many are lent. Lowering the
   count is only allowed while no product runs. */
int lstm_gemm_lend(int count) {
    if (count < 0) count = 0;
    if (count > MAX_HELPERS) count = MAX_HELPERS;
    pthread_mutex_lock(&lend_mu);
    while (spawned < count) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, helper_main, (void *)(intptr_t)spawned) != 0) break;
        pthread_detach(thread);
        spawned++;
    }
    if (count > spawned) count = spawned;
    atomic_store(&lent, count);
    pthread_cond_broadcast(&lend_cv);
    pthread_mutex_unlock(&lend_mu);
    return count;
}

/* How many parts of split products their callers computed themselves, since the library
   loaded: parts no helper had started by the time the caller's own part was done. */
long long lstm_gemm_taken_back(void) { return atomic_load(&taken_back); }

/* The product, B read from `packed` (lstm_gemm_pack of this B) unless it is NULL; call
   lstm_gemm_path() first (it fixes the path before threads start). */
void lstm_gemm_packed(int trans_a, i64 m, i64 n, i64 k, const float *a, i64 lda,
                      const float *b, i64 ldb, float *c, i64 ldc, const float *packed) {
    const gemm_fn fn = FNS[chosen];
    const int can = atomic_load_explicit(&lent, memory_order_acquire);
    if (can == 0 || m * n * k < MIN_SPLIT_WORK) {
        fn(trans_a, m, n, k, a, lda, b, ldb, c, ldc, packed);
        return;
    }
    helper_t *mine[MAX_HELPERS];
    int got = 0;
    for (int i = 0; i < can; i++) {
        int expect = FREE;
        if (atomic_compare_exchange_strong(&helpers[i].state, &expect, CLAIMED)) mine[got++] = &helpers[i];
    }
    /* Columns in whole blocks of 32 (two AVX-512 vectors) while there are enough, else rows;
       rows always from panels, whose blocks a column split would cut. */
    const int parts = got + 1;
    const int by_cols = packed == NULL && (n >= 64 * parts || m < 2 * parts);
    const i64 span = by_cols ? n : m, unit = by_cols ? 32 : 1;
    const i64 units = (span + unit - 1) / unit;
    i64 start = 0;
    for (int part = 0; part < parts; part++) {
        i64 end = part == parts - 1 ? span : (units * (part + 1) / parts) * unit;
        if (end > span) end = span;
        if (part == parts - 1) {
            if (end > start) {
                if (by_cols)
                    fn(trans_a, m, end - start, k, a, lda, b + start, ldb, c + start, ldc, NULL);
                else
                    fn(trans_a, end - start, n, k, trans_a ? a + start : a + start * lda, lda, b,
                       ldb, c + start * ldc, ldc, packed);
            }
            break;
        }
        helper_t *h = mine[part];
        h->trans = trans_a, h->k = k, h->lda = lda, h->ldb = ldb, h->ldc = ldc;
        h->packed = by_cols ? NULL : packed;
        if (by_cols) {
            h->m = m, h->n = end - start, h->a = a, h->b = b + start, h->c = c + start;
        } else {
            h->m = end - start, h->n = n, h->a = trans_a ? a + start : a + start * lda, h->b = b;
            h->c = c + start * ldc;
        }
        atomic_store_explicit(&h->state, end > start ? READY : DONE, memory_order_release);
        start = end;
    }
    for (int i = 0; i < got; i++) {
        helper_t *h = mine[i];
        int ready = READY;
        if (atomic_compare_exchange_strong_explicit(&h->state, &ready, CLAIMED,
                                                    memory_order_acquire, memory_order_relaxed)) {
            run_part(h); /* its helper has not started it: the caller does, instead */
            atomic_fetch_add_explicit(&taken_back, 1, memory_order_relaxed);
        } else {
            unsigned spins = 0;
            while (atomic_load_explicit(&h->state, memory_order_acquire) != DONE) relax(&spins);
        }
        atomic_store_explicit(&h->state, FREE, memory_order_release);
    }
}

void lstm_gemm(int trans_a, i64 m, i64 n, i64 k, const float *a, i64 lda, const float *b,
               i64 ldb, float *c, i64 ldc) {
    lstm_gemm_packed(trans_a, m, n, k, a, lda, b, ldb, c, ldc, NULL);
}

/* The LSTM cell's elementwise work between the products, one time step of every row, with the
   operations and the order of the numba loops it replaced, so the same bits. Float arithmetic is
   not associative, so each expression is evaluated in one written order, as separate
   multiplies and adds (never fused: -ffp-contract=off, and the vector path names each
   instruction), and only independent elements run side by side in a vector. Division and the
   clamps (min/max keep a NaN as the comparisons do) are exact in every instruction set. The
   AVX2 path evaluates a row's four gates and its cell state for 8 units at a time, enough
   independent work to keep the vector units busy (numba's loops, gate by gate, ran a polynomial's
   dependent chain: ~1.4 ns an element on the AVX2 machine); tests/engine/test_kernels.py
   compares every path with a numpy float32 reference of these formulas, bit for bit.

   tanh is the rational approximation TensorFlow's CPU kernels use (Eigen's ptanh_float), and
   sigmoid(x) = tanh(x / 2) / 2 + 1/2; each constant is its decimal read as a double, then
   rounded to float. */
#define CLAMP ((float)7.90531110763549805)
#define A1 ((float)4.89352455891786e-03)
#define A3 ((float)6.37261928875436e-04)
#define A5 ((float)1.48572235717979e-05)
#define A7 ((float)5.12229709037114e-08)
#define A9 ((float)-8.60467152213735e-11)
#define A11 ((float)2.00018790482477e-13)
#define A13 ((float)-2.76076847742355e-16)
#define B0 ((float)4.89352518554385e-03)
#define B2 ((float)2.26843463243900e-03)
#define B4 ((float)1.18534705686654e-04)
#define B6 ((float)1.19825839466702e-06)

static inline float tanh1(float x) {
    x = x > CLAMP ? CLAMP : x;
    x = x < -CLAMP ? -CLAMP : x;
    const float x2 = x * x;
    float p = x2 * A13 + A11;
    p = x2 * p + A9;
    p = x2 * p + A7;
    p = x2 * p + A5;
    p = x2 * p + A3;
    p = x2 * p + A1;
    p = x * p;
    float q = x2 * B6 + B4;
    q = x2 * q + B2;
    q = x2 * q + B0;
    return p / q;
}

static inline float sigmoid1(float x) { return 0.5f * tanh1(0.5f * x) + 0.5f; }

/* out = sigmoid(x), n values: a classifier's output from its logit (the loss head). */
void lstm_sigmoid(i64 n, const float *x, float *out) {
    for (i64 j = 0; j < n; j++) out[j] = sigmoid1(x[j]);
}

/* Whether the cell runs its AVX2 path (the product's AVX-512 path implies AVX2). */
static int cell_avx2(void) { return chosen == 0 || chosen == 1; }

#define V __m256
#define VSET _mm256_set1_ps
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps

static inline __attribute__((always_inline, target("avx2"))) V tanh8(V x) {
    x = _mm256_min_ps(VSET(CLAMP), x); /* CLAMP < x ? CLAMP : x */
    x = _mm256_max_ps(VSET(-CLAMP), x);
    const V x2 = VMUL(x, x);
    V p = VADD(VMUL(x2, VSET(A13)), VSET(A11));
    p = VADD(VMUL(x2, p), VSET(A9));
    p = VADD(VMUL(x2, p), VSET(A7));
    p = VADD(VMUL(x2, p), VSET(A5));
    p = VADD(VMUL(x2, p), VSET(A3));
    p = VADD(VMUL(x2, p), VSET(A1));
    p = VMUL(x, p);
    V q = VADD(VMUL(x2, VSET(B6)), VSET(B4));
    q = VADD(VMUL(x2, q), VSET(B2));
    q = VADD(VMUL(x2, q), VSET(B0));
    return _mm256_div_ps(p, q);
}

static inline __attribute__((always_inline, target("avx2"))) V sigmoid8(V x) {
    return VADD(VMUL(VSET(0.5f), tanh8(VMUL(VSET(0.5f), x))), VSET(0.5f));
}

/* Units [j0, units) of one unmasked row, one at a time (the tail, and the plain path). */
static void cell_forward_row(i64 j0, i64 units, const float *z, const float *xw,
                             const float *bias, const float *c_prev, float *g, float *c, float *h,
                             float *tc) {
    for (i64 j = j0; j < units; j++) {
        const i64 f = units + j, u = 2 * units + j, o = 3 * units + j;
        g[j] = sigmoid1((xw[j] + z[j]) + bias[j]);
        g[f] = sigmoid1((xw[f] + z[f]) + bias[f]);
        g[u] = tanh1((xw[u] + z[u]) + bias[u]);
        g[o] = sigmoid1((xw[o] + z[o]) + bias[o]);
        const float cn = g[f] * c_prev[j] + g[j] * g[u];
        const float t = tanh1(cn);
        c[j] = cn, tc[j] = t, h[j] = g[o] * t;
    }
}

#define LOADSUM(at) VADD(VADD(_mm256_loadu_ps(xw + (at)), _mm256_loadu_ps(z + (at))), \
                         _mm256_loadu_ps(bias + (at)))

static __attribute__((target("avx2"))) i64 cell_forward_row_avx2(
    i64 units, const float *z, const float *xw, const float *bias, const float *c_prev, float *g,
    float *c, float *h, float *tc) {
    i64 j = 0;
    for (; j + 8 <= units; j += 8) {
        const V i = sigmoid8(LOADSUM(j)), f = sigmoid8(LOADSUM(units + j));
        const V u = tanh8(LOADSUM(2 * units + j)), o = sigmoid8(LOADSUM(3 * units + j));
        _mm256_storeu_ps(g + j, i);
        _mm256_storeu_ps(g + units + j, f);
        _mm256_storeu_ps(g + 2 * units + j, u);
        _mm256_storeu_ps(g + 3 * units + j, o);
        const V cn = VADD(VMUL(f, _mm256_loadu_ps(c_prev + j)), VMUL(i, u));
        const V t = tanh8(cn);
        _mm256_storeu_ps(c + j, cn);
        _mm256_storeu_ps(tc + j, t);
        _mm256_storeu_ps(h + j, VMUL(o, t));
    }
    return j;
}

/* A masked row (padding) keeps its previous state, as keras.layers.LSTM does for a masked
   step; its gates and tanh(c) are zero. z = h_prev @ U on entry (gate order i, f, g, o).
   c and h may be c_prev and h_prev (inference updates the state in place). */
void lstm_cell_forward(i64 rows, i64 units, const float *z, const float *xw, const float *bias,
                       const float *c_prev, const float *h_prev, const uint8_t *mask,
                       float *gates, float *c, float *h, float *tc) {
    const int avx2 = cell_avx2();
    for (i64 r = 0; r < rows; r++) {
        const i64 at = r * units, at4 = 4 * at;
        if (!mask[r]) {
            if (c != c_prev) memcpy(c + at, c_prev + at, (size_t)units * sizeof(float));
            if (h != h_prev) memcpy(h + at, h_prev + at, (size_t)units * sizeof(float));
            memset(tc + at, 0, (size_t)units * sizeof(float));
            memset(gates + at4, 0, (size_t)(4 * units) * sizeof(float));
            continue;
        }
        const i64 j = avx2 ? cell_forward_row_avx2(units, z + at4, xw + at4, bias, c_prev + at,
                                                   gates + at4, c + at, h + at, tc + at)
                           : 0;
        cell_forward_row(j, units, z + at4, xw + at4, bias, c_prev + at, gates + at4, c + at,
                         h + at, tc + at);
    }
}

static void cell_backward_row(i64 j0, i64 units, const float *dh, float *dc, const float *g,
                              const float *c_prev, const float *tc, float *dz) {
    for (i64 j = j0; j < units; j++) {
        const float i = g[j], f = g[units + j], u = g[2 * units + j], o = g[3 * units + j];
        const float t = tc[j];
        const float d = dc[j] + (dh[j] * o) * (1.0f - t * t);
        dz[j] = ((d * u) * i) * (1.0f - i);
        dz[units + j] = ((d * c_prev[j]) * f) * (1.0f - f);
        dz[2 * units + j] = (d * i) * (1.0f - u * u);
        dz[3 * units + j] = ((dh[j] * t) * o) * (1.0f - o);
        dc[j] = d * f;
    }
}

static __attribute__((target("avx2"))) i64 cell_backward_row_avx2(
    i64 units, const float *dh, float *dc, const float *g, const float *c_prev, const float *tc,
    float *dz) {
    const V one = VSET(1.0f);
    i64 j = 0;
    for (; j + 8 <= units; j += 8) {
        const V i = _mm256_loadu_ps(g + j), f = _mm256_loadu_ps(g + units + j);
        const V u = _mm256_loadu_ps(g + 2 * units + j), o = _mm256_loadu_ps(g + 3 * units + j);
        const V t = _mm256_loadu_ps(tc + j), dhj = _mm256_loadu_ps(dh + j);
        const V d = VADD(_mm256_loadu_ps(dc + j), VMUL(VMUL(dhj, o), VSUB(one, VMUL(t, t))));
        _mm256_storeu_ps(dz + j, VMUL(VMUL(VMUL(d, u), i), VSUB(one, i)));
        _mm256_storeu_ps(dz + units + j,
                         VMUL(VMUL(VMUL(d, _mm256_loadu_ps(c_prev + j)), f), VSUB(one, f)));
        _mm256_storeu_ps(dz + 2 * units + j, VMUL(VMUL(d, i), VSUB(one, VMUL(u, u))));
        _mm256_storeu_ps(dz + 3 * units + j, VMUL(VMUL(VMUL(dhj, t), o), VSUB(one, o)));
        _mm256_storeu_ps(dc + j, VMUL(d, f));
    }
    return j;
}

/* Backpropagates one time step: writes dz (the gate pre-activations' gradient) and turns dc
   into the previous cell state's gradient. A masked row passes dh and dc through. */
void lstm_cell_backward(i64 rows, i64 units, const float *dh, float *dc, const float *gates,
                        const float *c_prev, const float *tc, const uint8_t *mask, float *dz) {
    const int avx2 = cell_avx2();
    for (i64 r = 0; r < rows; r++) {
        const i64 at = r * units, at4 = 4 * at;
        if (!mask[r]) {
            memset(dz + at4, 0, (size_t)(4 * units) * sizeof(float));
            continue;
        }
        const i64 j = avx2 ? cell_backward_row_avx2(units, dh + at, dc + at, gates + at4,
                                                    c_prev + at, tc + at, dz + at4)
                           : 0;
        cell_backward_row(j, units, dh + at, dc + at, gates + at4, c_prev + at, tc + at, dz + at4);
    }
}

#ifndef GEMM_SOURCE_SHA256
#define GEMM_SOURCE_SHA256 "unknown"
#endif

/* The sha256 of the gemm.c this library was built from (setup.py passes it). */
const char *lstm_gemm_source(void) { return GEMM_SOURCE_SHA256; }

/* An importable module, so the package finds this library like any other of its modules;
   the functions above are called through ctypes from compiled (numba) code. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gemm",
                                    "The engine's matrix product and LSTM cell (see gemm.c).", -1, NULL};

PyMODINIT_FUNC PyInit__gemm(void) { return PyModule_Create(&module); }
