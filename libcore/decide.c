/* SPDX-License-Identifier: Apache-2.0 */
/* decide.c - placeholder until this unit lands. */
