/* SPDX-License-Identifier: Apache-2.0 */
/* model.c - placeholder until this unit lands. */
