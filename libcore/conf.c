/* SPDX-License-Identifier: Apache-2.0 */
/* conf.c - placeholder until this unit lands. */
