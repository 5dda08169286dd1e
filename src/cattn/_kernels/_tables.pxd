# The C kernel tables of the attention family, declared once for the
# drivers: include/attention/cattn_attention.h (online-softmax columns,
# element-wise mask and non-finite steps, block sizes) and
# include/topk/cattn_topk.h (the top-k scans).  One row per dtype x ISA,
# reached with cattn_<table>_<dtype>_for(active_isa()), like the GEMM's
# (_gemm.pxd) and the softmax rows' (_softmax.pxd).
from libc.stdint cimport int64_t, uint8_t

cdef extern from "attention/cattn_attention.h":
    ctypedef struct cattn_attention_blocks:
        int64_t bq_target, bk_target, bk_max, chunk, decode_chunk
        int64_t decode_max_l, group_bytes
        int64_t topk_bq, topk_bk
        int64_t grad_bq, grad_bk, grad_group_bytes
    const cattn_attention_blocks *cattn_attention_blocks_for(
        int isa) noexcept nogil
    ctypedef struct cattn_cols_f32:
        const char *name
        int64_t vl
        int (*online_softmax)(int64_t, int64_t, int64_t, float *, int64_t,
                              double *, double *, float *,
                              float *) noexcept nogil
        int (*online_softmax_p16)(int64_t, int64_t, int64_t, float *,
                                  int64_t, double *, double *, float *,
                                  float *) noexcept nogil
        void (*scale_rows)(int64_t, int64_t, float *, int64_t,
                           const float *) noexcept nogil
        void (*finish_rows)(int64_t, int64_t, const float *, int64_t,
                            const double *, const double *, float *, int64_t,
                            int64_t, float *) noexcept nogil
        void (*exp_neg)(int64_t, const float *, float *) noexcept nogil
        void (*exp_neg_p16)(int64_t, const float *, float *) noexcept nogil
        void (*tile_mask_add)(int64_t, int64_t, float *, int64_t,
                              const float *, int64_t, int64_t) noexcept nogil
        void (*tile_mask_bool)(int64_t, int64_t, float *, int64_t,
                               const uint8_t *, int64_t,
                               int64_t) noexcept nogil
        void (*hide_outside)(int64_t, float *, int64_t,
                             int64_t) noexcept nogil
        void (*row_mask_add)(int64_t, float *, const float *,
                             int64_t) noexcept nogil
        void (*row_mask_bool)(int64_t, float *, const uint8_t *,
                              int64_t) noexcept nogil
        int (*any_nonfinite)(int64_t, const float *) noexcept nogil
        int (*zero_nonfinite)(int64_t, float *) noexcept nogil
        void (*save_partial)(int64_t, int64_t, const double *, const double *,
                             const float *, int64_t, float *) noexcept nogil
        void (*merge_partials)(int64_t, int64_t, int64_t, const float *,
                               int64_t, double *, double *, float *,
                               int64_t) noexcept nogil
        void (*tile_softcap)(int64_t, int64_t, float *, int64_t,
                             float) noexcept nogil
        void (*tile_alibi)(int64_t, int64_t, float *, int64_t, float,
                           int64_t) noexcept nogil
    ctypedef struct cattn_cols_f64:
        const char *name
        int64_t vl
        int (*online_softmax)(int64_t, int64_t, int64_t, double *, int64_t,
                              double *, double *, double *,
                              double *) noexcept nogil
        int (*online_softmax_p16)(int64_t, int64_t, int64_t, double *,
                                  int64_t, double *, double *, double *,
                                  double *) noexcept nogil
        void (*scale_rows)(int64_t, int64_t, double *, int64_t,
                           const double *) noexcept nogil
        void (*finish_rows)(int64_t, int64_t, const double *, int64_t,
                            const double *, const double *, double *, int64_t,
                            int64_t, double *) noexcept nogil
        void (*exp_neg)(int64_t, const double *, double *) noexcept nogil
        void (*exp_neg_p16)(int64_t, const double *, double *) noexcept nogil
        void (*tile_mask_add)(int64_t, int64_t, double *, int64_t,
                              const double *, int64_t, int64_t) noexcept nogil
        void (*tile_mask_bool)(int64_t, int64_t, double *, int64_t,
                               const uint8_t *, int64_t,
                               int64_t) noexcept nogil
        void (*hide_outside)(int64_t, double *, int64_t,
                             int64_t) noexcept nogil
        void (*row_mask_add)(int64_t, double *, const double *,
                             int64_t) noexcept nogil
        void (*row_mask_bool)(int64_t, double *, const uint8_t *,
                              int64_t) noexcept nogil
        int (*any_nonfinite)(int64_t, const double *) noexcept nogil
        int (*zero_nonfinite)(int64_t, double *) noexcept nogil
        void (*save_partial)(int64_t, int64_t, const double *, const double *,
                             const double *, int64_t, double *) noexcept nogil
        void (*merge_partials)(int64_t, int64_t, int64_t, const double *,
                               int64_t, double *, double *, double *,
                               int64_t) noexcept nogil
        void (*tile_softcap)(int64_t, int64_t, double *, int64_t,
                             double) noexcept nogil
        void (*tile_alibi)(int64_t, int64_t, double *, int64_t, double,
                           int64_t) noexcept nogil
    const cattn_cols_f32 *cattn_cols_f32_for(int isa) nogil
    const cattn_cols_f64 *cattn_cols_f64_for(int isa) nogil


cdef extern from "topk/cattn_topk.h":
    ctypedef struct cattn_topk_f32:
        const char *name
        int64_t (*first_reaching)(int64_t, const float *,
                                  float) noexcept nogil
        int (*hide_below)(int64_t, float *, const float *) noexcept nogil
    ctypedef struct cattn_topk_f64:
        const char *name
        int64_t (*first_reaching)(int64_t, const double *,
                                  double) noexcept nogil
        int (*hide_below)(int64_t, double *, const double *) noexcept nogil
    const cattn_topk_f32 *cattn_topk_f32_for(int isa) nogil
    const cattn_topk_f64 *cattn_topk_f64_for(int isa) nogil
