/* SPDX-License-Identifier: Apache-2.0 */
/* grpc.c - placeholder until this unit lands. */
