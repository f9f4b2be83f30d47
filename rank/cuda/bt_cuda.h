/* Bulk soft Bradley-Terry on a CUDA GPU: joust_bt_fit_bulk (bt_bulk.h) with
 * one warp per prompt. Built only where nvcc is present (target
 * joust_rank_cuda); nothing else depends on it.
 * Promises: the objective, prior, clip, stopping rules, input checks and
 * outputs of joust_bt_fit_bulk; prompts of 2..32 images run on the GPU (lane
 * i of the warp owns image i), the others on the CPU through joust_bt_fit
 * (stats: max_step covers the GPU prompts; prompts_large counts those over
 * JOUST_BT_BULK_SMALL images, as joust_bt_fit_bulk does).
 * GPU results agree with joust_bt_fit_bulk to within the tolerance, not bit
 * for bit (the GPU's exp and the summation order differ); they do not depend
 * on the launch order. Ownership: the caller owns every array; device
 * memory lives for the call only. Threads: one call at a time per process
 * is the tested use (it uses the current device and the default stream).
 * Errors: 0; JOUST_EINVAL as joust_bt_fit_bulk; JOUST_EUNSUPPORTED when no
 * CUDA device is usable (nothing touched); JOUST_EIO when a CUDA call fails
 * (outputs unspecified). */
#ifndef JOUST_BT_CUDA_H
#define JOUST_BT_CUDA_H

#include "bt_bulk.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when a CUDA device can be used, else 0. */
int joust_bt_cuda_available(void);

/* As joust_bt_fit_bulk, without a thread count. */
int joust_bt_fit_bulk_cuda(const joust_bt_problem *pb, const joust_bt_opts *o, int warm,
                           double *theta, double *se, joust_bt_bulk_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
