/* The training step's elementwise work in a few passes instead of about thirty small torch calls.
 * vae_core/kernels.py compiles this file with the machine's C compiler and calls it through ctypes;
 * vae_core/backprop.py falls back to torch's own calls where it cannot. The loss and the latent head
 * are single-threaded (they touch 100,000 numbers or fewer); Adam, over every parameter, runs on
 * torch's own OpenMP threads (see adam_bf16).
 *
 * Each function comes in two forms, for the dtype the matrix multiplies read and write: "bf16"
 * (bfloat16, stored as uint16_t, rounded to nearest even as torch rounds) and "f32". Everything is
 * computed in float32, as torch computes it. exp and log are written out (a Cephes polynomial and an
 * atanh series, both within a few float32 ulps) so that the compiler vectorises the loops without
 * -ffast-math and without a vector math library. */

#include <stdint.h>

typedef union {
    float f;
    uint32_t u;
    int32_t i;
} bits32;

static inline float from_bf16(uint16_t b) {
    bits32 v;
    v.u = (uint32_t)b << 16;
    return v.f;
}

static inline uint16_t to_bf16(float f) {
    bits32 v;
    v.f = f;
    uint32_t rounded = (v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16;
    return (uint16_t)((v.u & 0x7FFFFFFFu) > 0x7F800000u ? (v.u >> 16) | 0x40u : rounded); /* NaN stays NaN */
}

static inline float from_f32(float f) { return f; }
static inline float to_f32(float f) { return f; }

/* e^x for x in [-87, 87] (clamped there; callers never need more), Cephes expf. */
static inline float exp_clamped(float x) {
    x = x < 87.0f ? x : 87.0f;
    x = x > -87.0f ? x : -87.0f;
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    bits32 s;
    s.i = ((int32_t)n + 127) << 23;
    return y * s.f;
}

/* log(1 + t) for t in [0, 1]: 2 atanh(s) with s = t / (2 + t) <= 1/3, seven terms of the series. */
static inline float log1p_unit(float t) {
    float s = t / (2.0f + t), s2 = s * s;
    float y = 1.0f / 15.0f;
    y = y * s2 + 1.0f / 13.0f;
    y = y * s2 + 1.0f / 11.0f;
    y = y * s2 + 1.0f / 9.0f;
    y = y * s2 + 1.0f / 7.0f;
    y = y * s2 + 1.0f / 5.0f;
    y = y * s2 + 1.0f / 3.0f;
    return 2.0f * s * (1.0f + s2 * y);
}

/* Bernoulli reconstruction loss and its gradient, one pass over the batch's pixels:
 *   returns sum(softplus(l) - x l), writes grad = sigmoid(l) - x.
 * softplus(l) = max(l, 0) + log(1 + e^-|l|); sigmoid(l) = 1 / (1 + e^-|l|), or e^-|l| times that for
 * l < 0. Partial sums of 4096 pixels in float32, added up in double. A NaN or infinite logit makes the
 * sum NaN or infinite (through x l), which the step's finiteness check sees. */
#define BCE(NAME, T, LOAD, STORE)                                                                  \
    double NAME(const T *restrict logits, const float *restrict x, T *restrict grad, int64_t n) {  \
        double total = 0.0;                                                                         \
        for (int64_t s = 0; s < n; s += 4096) {                                                     \
            int64_t e = s + 4096 < n ? s + 4096 : n;                                                \
            float acc = 0.0f;                                                                       \
            for (int64_t i = s; i < e; i++) {                                                       \
                float l = LOAD(logits[i]), xi = x[i];                                               \
                float a = l < 0.0f ? -l : l;                                                        \
                float t = exp_clamped(-a);                                                          \
                float r = 1.0f / (1.0f + t);                                                        \
                float p = l >= 0.0f ? r : t * r;                                                    \
                acc += (l > 0.0f ? l : 0.0f) + log1p_unit(t) - xi * l;                              \
                grad[i] = STORE(p - xi);                                                            \
            }                                                                                       \
            total += acc;                                                                           \
        }                                                                                           \
        return total;                                                                               \
    }

BCE(bce_bf16, uint16_t, from_bf16, to_bf16)
BCE(bce_f32, float, from_f32, to_f32)

/* The latent head, forward: from head = [mu | raw logvar] (B, 2Z) and eps ~ N(0, 1) (B, Z), writes
 * saved = [mu, raw, sigma^2, sigma eps] (4, B, Z) for the backward pass and z = mu + sigma eps (B, Z);
 * returns KL = 1/2 sum(mu^2 + sigma^2 - logvar - 1), logvar = clamp(raw, lo, hi). */
#define HEAD_FORWARD(NAME, T, LOAD, STORE)                                                          \
    double NAME(const T *restrict head, const float *restrict eps, float *restrict saved,          \
                T *restrict z, int64_t b, int64_t zd, float lo, float hi) {                         \
        int64_t n = b * zd;                                                                         \
        float *mu = saved, *raw = saved + n, *var = saved + 2 * n, *noise = saved + 3 * n;          \
        double kl = 0.0;                                                                            \
        for (int64_t r = 0; r < b; r++) {                                                           \
            float acc = 0.0f;                                                                       \
            for (int64_t j = 0; j < zd; j++) {                                                      \
                int64_t i = r * zd + j;                                                             \
                float m = LOAD(head[r * 2 * zd + j]), w = LOAD(head[r * 2 * zd + zd + j]);          \
                float lv = w < lo ? lo : (w > hi ? hi : w);                                         \
                float sd = exp_clamped(0.5f * lv), nz = sd * eps[i];                                \
                mu[i] = m;                                                                          \
                raw[i] = w;                                                                         \
                var[i] = sd * sd;                                                                   \
                noise[i] = nz;                                                                      \
                z[i] = STORE(m + nz);                                                               \
                acc += m * m + sd * sd - lv - 1.0f;                                                 \
            }                                                                                       \
            kl += acc;                                                                              \
        }                                                                                           \
        return 0.5 * kl;                                                                            \
    }

HEAD_FORWARD(head_forward_bf16, uint16_t, from_bf16, to_bf16)
HEAD_FORWARD(head_forward_f32, float, from_f32, to_f32)

/* The latent head, backward: from dz = d(total)/dz (B, Z) and what the forward saved, writes
 * dhead = [dz + beta mu | dz eps sigma / 2 + beta (sigma^2 - 1) / 2] (B, 2Z), the second half zero
 * where the clamp cut raw logvar, bounds included (as clamp's autograd does: hardtanh_backward). */
#define HEAD_BACKWARD(NAME, T, LOAD, STORE)                                                         \
    void NAME(const T *restrict dz, const float *restrict saved, T *restrict dhead, int64_t b,     \
              int64_t zd, float beta, float lo, float hi) {                                         \
        int64_t n = b * zd;                                                                         \
        const float *mu = saved, *raw = saved + n, *var = saved + 2 * n, *noise = saved + 3 * n;    \
        for (int64_t r = 0; r < b; r++) {                                                           \
            for (int64_t j = 0; j < zd; j++) {                                                      \
                int64_t i = r * zd + j;                                                             \
                float g = LOAD(dz[i]);                                                              \
                float dlv = 0.5f * beta * (var[i] - 1.0f) + 0.5f * g * noise[i];                    \
                dhead[r * 2 * zd + j] = STORE(g + beta * mu[i]);                                    \
                dhead[r * 2 * zd + zd + j] = STORE(raw[i] > lo && raw[i] < hi ? dlv : 0.0f);        \
            }                                                                                       \
        }                                                                                           \
    }

HEAD_BACKWARD(head_backward_bf16, uint16_t, from_bf16, to_bf16)
HEAD_BACKWARD(head_backward_f32, float, from_f32, to_f32)

/* Adam over the flat parameter buffer, reading the gradient as the multiplies wrote it (bfloat16)
 * and writing the bfloat16 copy of the weights the next step multiplies with: one pass where torch
 * takes three (the gradient's cast to float32, its fused Adam, the weights' cast). The update is
 * torch's fused Adam's (1 - beta is passed in, computed in double as torch computes it):
 *   m += (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2;
 *   p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps),  bc_k = 1 - beta_k^step.
 * First, in the same parallel region, every gradient is checked: if one is infinite or NaN, nothing
 * is written and 0 is returned (1 after an update).
 * Built with -fopenmp where torch's threads are GNU OpenMP's: the loops are then split over the
 * threads of the libgomp.so.1 torch already loaded (one pool, shared), as torch splits its own Adam,
 * into `threads` shares (torch's thread count); both loops split alike, so each thread updates the
 * gradients it checked. */
int adam_bf16(float *restrict p, const uint16_t *restrict g, float *restrict m, float *restrict v,
              uint16_t *restrict w, int64_t n, float lr, float one_minus_beta1, float beta2,
              float one_minus_beta2, float eps, float bc1, float bc2_sqrt, int threads) {
    float step = lr / bc1;
    int bad = 0;
#pragma omp parallel num_threads(threads) if (n > 65536)
    {
#pragma omp for simd schedule(static) reduction(| : bad)
        for (int64_t i = 0; i < n; i++) bad |= (g[i] & 0x7F80u) == 0x7F80u; /* exponent all ones */
        if (!bad) {                                                          /* after the loop's barrier */
#pragma omp for simd schedule(static)
            for (int64_t i = 0; i < n; i++) {
                float gi = from_bf16(g[i]);
                float mi = m[i] + one_minus_beta1 * (gi - m[i]);
                float vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
                float pi = p[i] - step * mi / (__builtin_sqrtf(vi) / bc2_sqrt + eps);
                m[i] = mi;
                v[i] = vi;
                p[i] = pi;
                w[i] = to_bf16(pi);
            }
        }
    }
    return !bad;
}
