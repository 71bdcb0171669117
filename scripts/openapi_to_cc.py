#!/usr/bin/python3
"""Build step: docs/openapi.yaml -> a C++ source holding it as compact JSON, so the
server serves GET /openapi.json from its own binary.

    openapi_to_cc.py docs/openapi.yaml build/generated/openapi_json.cc
"""
import json
import sys

import yaml


def main() -> int:
    source, target = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as f:
        document = yaml.safe_load(f)
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    delimiter = "openapi"
    if f"){delimiter}\"" in text:
        raise SystemExit("the document holds the raw-string delimiter")
    with open(target, "w", encoding="utf-8") as f:
        f.write("// Generated from docs/openapi.yaml by scripts/openapi_to_cc.py: do not edit.\n")
        f.write('#include "apps/openapi.h"\n\n')
        f.write("namespace sessionctx::apps {\n\n")
        f.write(f'const char kOpenApiJson[] = R"{delimiter}({text}){delimiter}";\n\n')
        f.write("}  // namespace sessionctx::apps\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
