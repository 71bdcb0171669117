// The HTTP handler inside cpprestsdk's http_listener (libcpprest-dev). The listener
// calls back on the threads of cpprestsdk's shared pool, which also run its network
// I/O, so the adapter hands each request to a worker pool, reads the body there
// (chunked bodies are decoded by cpprestsdk as they arrive; getn waits for bytes or
// the end) one byte past the limit at most, and replies asynchronously. cpprestsdk folds
// repeated headers into one comma-separated value, which is what a repeated header means
// anyway.
//
//   cpprest_server 8080 secret-file
#include <cpprest/http_listener.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "example_app.h"

namespace {

namespace http = web::http;

// [embed:cpprest-adapter]
void Serve(const example::App& app, const http::http_request& req) {
  sessionctx::HttpRequest in;
  in.method = req.method();
  in.target = req.relative_uri().to_string();  // still percent-encoded
  for (const auto& [name, value] : req.headers()) in.headers.emplace_back(name, value);
  const size_t limit = app.options.max_body_bytes;
  Concurrency::streams::streambuf<uint8_t> body = req.body().streambuf();
  in.body.resize(limit + 1);
  size_t read = 0;  // until the end of the body, or one byte past the limit
  for (size_t n = 1; n > 0 && read <= limit; read += n) {
    n = body.getn(reinterpret_cast<uint8_t*>(in.body.data()) + read, limit + 1 - read)
            .get();
  }
  in.body.resize(read);

  sessionctx::HttpResponse res =
      read > limit ? sessionctx::ErrorResponse(413, "request body is too large")
                   : app.handler->Handle(in);
  http::http_response out(static_cast<http::status_code>(res.status));
  std::string content_type;
  for (const auto& [name, value] : res.headers) {
    if (name == "Content-Type") {
      content_type = value;  // set with the body, else cpprestsdk says text/plain
    } else {
      out.headers().add(name, value);
    }
  }
  if (example::HasBody(in.method, res.status)) {
    out.set_body(std::move(res.body), content_type);
  } else if (!content_type.empty()) {
    out.headers().set_content_type(content_type);  // HEAD: the GET's headers
  }
  req.reply(out).then([](const pplx::task<void>& sent) {  // asynchronous
    try {
      sent.wait();
    } catch (const std::exception&) {  // the client left: nothing to do (unobserved, it
    }                                  // would end the process)
  });
}
// [end:cpprest-adapter]

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<example::App> app = example::Start(argc, argv, "cpprest_server");
  if (!app) return 2;
  example::WorkerPool pool(4);  // outlives the listener
  http::experimental::listener::http_listener listener("http://127.0.0.1:" +
                                                       std::to_string(app->port));
  listener.support([&app, &pool](const http::http_request& req) {
    pool.Post([&app, req] { Serve(*app, req); });  // off cpprestsdk's I/O threads
  });
  listener.open().wait();
  example::Listening(app->port);
  example::WaitForStop();
  // No listener.close(): cpprestsdk's asio listener can crash in it while keep-alive
  // connections are still reading (here about one SIGTERM in 50 under load; its issues
  // #1226 and #1622 report the same). The pool answers what was posted (a request that
  // arrives meanwhile is answered on its own thread), and the process ends without
  // destructors, which would race cpprestsdk's threads; the kernel closes the sockets.
  pool.Stop();
  std::fflush(nullptr);
  std::_Exit(0);
}
