// The HTTP handler inside cpp-httplib, as one more framework. An example only:
// cpp-httplib 0.11 runs a thread per connection and reads chunked bodies without
// limit, so it is no front for real traffic (sessionctx-server is).
//
//   httplib_server 8080 secret-file
#include <httplib.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "sessionctx/http_handler.h"
#include "sessionctx/memory_store.h"
#include "sessionctx/session_service.h"
#include "sessionctx/jwt.h"

namespace {

sessionctx::HttpRequest ToRequest(const httplib::Request& in) {
  sessionctx::HttpRequest out;
  out.method = in.method;
  out.target = in.target;  // raw: the handler percent-decodes path segments itself
  for (const auto& [name, value] : in.headers) out.headers.emplace_back(name, value);
  out.body = in.body;
  return out;
}

void Serve(const sessionctx::HttpHandler& handler, const httplib::Request& in,
           httplib::Response& out) {
  sessionctx::HttpResponse res = handler.Handle(ToRequest(in));
  out.status = res.status;
  std::string content_type = "application/json";
  for (const auto& [name, value] : res.headers) {
    if (name == "Content-Type") {
      content_type = value;
    } else {
      out.set_header(name, value);
    }
  }
  if (!res.body.empty()) out.set_content(res.body, content_type);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: httplib_server PORT SECRET_FILE\n");
    return 2;
  }
  std::ifstream secret_in(argv[2]);
  std::stringstream secret;
  secret << secret_in.rdbuf();
  std::string key = secret.str();
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();

  auto store = sessionctx::NewMemoryStore(sessionctx::StoreOptions{});
  sessionctx::SessionService service(store.get(), sessionctx::ServiceOptions{});
  auto verifier = sessionctx::NewHs256Verifier(key, sessionctx::JwtOptions{});
  if (!verifier.ok()) {
    std::fprintf(stderr, "%s\n", verifier.status().ToString().c_str());
    return 2;
  }
  const sessionctx::HandlerOptions options;
  const sessionctx::HttpHandler handler(&service, verifier->get(), options);

  httplib::Server server;
  server.set_payload_max_length(options.max_body_bytes);  // Content-Length bodies only
  auto serve = [&handler](const httplib::Request& in, httplib::Response& out) {
    Serve(handler, in, out);
  };
  server.Get(".*", serve);
  server.Post(".*", serve);
  server.Put(".*", serve);
  server.Patch(".*", serve);
  server.Delete(".*", serve);
  std::printf("listening on 127.0.0.1:%s\n", argv[1]);
  std::fflush(stdout);
  return server.listen("127.0.0.1", std::stoi(argv[1])) ? 0 : 1;
}
