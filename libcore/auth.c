/* SPDX-License-Identifier: Apache-2.0 */
/* auth.c - placeholder until this unit lands. */
