# SPDX-License-Identifier: Apache-2.0
tu_proto_sources =
