/* SPDX-License-Identifier: Apache-2.0 */
/* cache.c - placeholder until this unit lands. */
