// The server's OpenAPI document (docs/openapi.yaml), as compact JSON built into the
// binary; GET /openapi.json serves it.
#ifndef SESSIONCTX_APPS_OPENAPI_H_
#define SESSIONCTX_APPS_OPENAPI_H_

namespace sessionctx::apps {

extern const char kOpenApiJson[];

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_OPENAPI_H_
