/* SPDX-License-Identifier: Apache-2.0 */
/* h2.c - placeholder until this unit lands. */
