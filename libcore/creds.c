/* SPDX-License-Identifier: Apache-2.0 */
/* creds.c - placeholder until this unit lands. */
