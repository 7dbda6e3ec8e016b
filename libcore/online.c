/* SPDX-License-Identifier: Apache-2.0 */
/* online.c - placeholder until this unit lands. */
