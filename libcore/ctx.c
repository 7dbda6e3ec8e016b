/* SPDX-License-Identifier: Apache-2.0 */
/* ctx.c - placeholder until this unit lands. */
