// The HTTP handler inside Pistache (libpistache-dev). Pistache's reactor threads are
// event loops, so the adapter copies the request and hands the call to a worker
// pool; the ResponseWriter moves with it and sends from there (Pistache queues the
// write to the reactor). Pistache parses the headers it knows into typed objects and
// keeps the rest raw, so both lists are copied; it splits the query from the path,
// so the target is put back together. Bodies over the limit (chunked too) are
// refused by Pistache itself with 413 while reading.
//
//   pistache_server 8080 secret-file
#include <pistache/endpoint.h>
#include <pistache/http.h>

#include <memory>
#include <sstream>
#include <string>

#include "example_app.h"

namespace {

// [embed:pistache-adapter]
sessionctx::HttpRequest ToRequest(const Pistache::Http::Request& req) {
  sessionctx::HttpRequest in;
  in.method = Pistache::Http::methodString(req.method());
  // Both still percent-encoded; the query's parameters come back in another order
  // (the handler reads them by name).
  in.target = req.resource() + req.query().as_str();
  for (const std::shared_ptr<Pistache::Http::Header::Header>& header :
       req.headers().list()) {
    std::ostringstream value;
    header->write(value);  // a typed header (Content-Type, Host, …) rendered back
    in.headers.emplace_back(header->name(), value.str());
  }
  for (const auto& [name, raw] : req.headers().rawList()) {  // those it does not know
    in.headers.emplace_back(raw.name(), raw.value());
  }
  in.body = req.body();
  return in;
}

// Pistache writes only the typed headers of a response: each of the handler's goes
// out as one of these.
class NamedHeader final : public Pistache::Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  void write(std::ostream& out) const override { out << value_; }
  uint64_t hash() const override {
    return Pistache::Http::Header::detail::hash(name_.c_str());
  }

 private:
  std::string name_, value_;
};

class Adapter final : public Pistache::Http::Handler {
 public:
  HTTP_PROTOTYPE(Adapter)
  Adapter(const example::App* app, example::WorkerPool* pool) : app_(app), pool_(pool) {}

  void onRequest(const Pistache::Http::Request& req,
                 Pistache::Http::ResponseWriter writer) override {
    auto out = std::make_shared<Pistache::Http::ResponseWriter>(std::move(writer));
    pool_->Post([app = app_, in = ToRequest(req), out] {  // off the reactor thread
      sessionctx::HttpResponse res = app->handler->Handle(in);
      for (const auto& [name, value] : res.headers) {
        out->headers().add(std::make_shared<NamedHeader>(name, value));
      }
      const auto code = static_cast<Pistache::Http::Code>(res.status);
      out->send(code, example::HasBody(in.method, res.status) ? res.body : std::string());
    });
  }

 private:
  const example::App* app_ = nullptr;
  example::WorkerPool* pool_ = nullptr;
};
// [end:pistache-adapter]

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<example::App> app = example::Start(argc, argv, "pistache_server");
  if (!app) return 2;
  example::WorkerPool pool(4);  // outlives the endpoint
  Pistache::Http::Endpoint endpoint(
      Pistache::Address("127.0.0.1", Pistache::Port(static_cast<uint16_t>(app->port))));
  endpoint.init(
      Pistache::Http::Endpoint::options()
          .threads(2)
          .maxRequestSize(app->options.max_body_bytes + 16 * 1024)  // head + body
          .flags(Pistache::Tcp::Options::ReuseAddr));
  endpoint.setHandler(Pistache::Http::make_handler<Adapter>(app.get(), &pool));
  endpoint.serveThreaded();
  example::Listening(app->port);
  example::WaitForStop();
  pool.Stop();  // calls under way send their answers; later ones run on the reactor
  endpoint.shutdown();
  return 0;
}
