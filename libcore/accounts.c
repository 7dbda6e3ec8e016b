/* SPDX-License-Identifier: Apache-2.0 */
/* accounts.c - placeholder until this unit lands. */
