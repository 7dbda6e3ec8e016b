/* SPDX-License-Identifier: Apache-2.0 */
/* rbac.c - placeholder until this unit lands. */
