// A small HTTP/1.1 client over a raw loopback socket, for tests of the real server:
// it sends exactly the bytes a test gives (hostile ones too) and reads answers with a
// deadline, so a test can tell an answer from a close and from a hang.
#ifndef SESSIONCTX_TESTS_HTTP_CLIENT_H_
#define SESSIONCTX_TESTS_HTTP_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sessionctx::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  int status = 0;
  Headers headers;
  std::string body;

  // Header returns the first value of `name` (any case), or "" when absent.
  std::string Header(absl::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (absl::EqualsIgnoreCase(n, name)) return v;
    }
    return "";
  }
  bool HasHeader(absl::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (absl::EqualsIgnoreCase(n, name)) return true;
    }
    return false;
  }
};

// FormatRequest renders a request with Host and, for a body, Content-Type and
// Content-Length.
inline std::string FormatRequest(absl::string_view method, absl::string_view target,
                                 const Headers& headers = {}, absl::string_view body = "",
                                 absl::string_view content_type = "application/json") {
  std::string out = absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& [n, v] : headers) absl::StrAppend(&out, n, ": ", v, "\r\n");
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    if (!content_type.empty()) absl::StrAppend(&out, "Content-Type: ", content_type, "\r\n");
    absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&out, "\r\n", body);
  return out;
}

class HttpConnection {
 public:
  // `receive_buffer` (bytes, 0: the system's default) is set before connecting, so
  // that the window the client offers is small from the start.
  explicit HttpConnection(int port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~HttpConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  HttpConnection(HttpConnection&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), pending_(std::move(o.pending_)) {}

  bool connected() const { return fd_ >= 0; }

  // Send writes all of `bytes`; false when the peer is gone.
  bool Send(absl::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Read returns the next final answer (a 100 Continue is skipped), or nullopt when
  // the connection closed or `timeout` passed first. `head` for an answer to HEAD.
  std::optional<HttpReply> Read(std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                bool head = false) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      size_t end;
      while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
        if (!Fill(deadline)) return std::nullopt;
      }
      HttpReply reply;
      absl::string_view head_block(pending_.data(), end);
      size_t eol = head_block.find("\r\n");
      absl::string_view status_line = head_block.substr(0, eol);
      if (status_line.size() < 12 || !absl::SimpleAtoi(status_line.substr(9, 3), &reply.status)) {
        return std::nullopt;
      }
      while (eol != absl::string_view::npos) {
        head_block.remove_prefix(eol + 2);
        eol = head_block.find("\r\n");
        absl::string_view line = head_block.substr(0, eol);
        const size_t colon = line.find(':');
        if (colon == absl::string_view::npos) continue;
        reply.headers.emplace_back(
            std::string(line.substr(0, colon)),
            std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
      }
      pending_.erase(0, end + 4);
      if (reply.status == 100) continue;
      size_t length = 0;
      if (!head && reply.status != 204 &&
          !absl::SimpleAtoi(reply.Header("Content-Length"), &length)) {
        length = 0;
      }
      while (pending_.size() < length) {
        if (!Fill(deadline)) return std::nullopt;
      }
      reply.body = pending_.substr(0, length);
      pending_.erase(0, length);
      return reply;
    }
  }

  // Request sends one request and reads its answer.
  std::optional<HttpReply> Request(absl::string_view method, absl::string_view target,
                                   const Headers& headers = {}, absl::string_view body = "") {
    if (!Send(FormatRequest(method, target, headers, body))) return std::nullopt;
    return Read(std::chrono::seconds(10), method == "HEAD");
  }

  // ClosedWithin: true when the peer closes (or resets) the connection within
  // `timeout`; bytes it sends first are kept for Read.
  bool ClosedWithin(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            deadline - std::chrono::steady_clock::now())
                                            .count());
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0) continue;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return true;
      pending_.append(buf, static_cast<size_t>(n));
    }
  }

  int fd() const { return fd_; }

 private:
  // Fill reads what arrives before `deadline`; false on close, error or time-out.
  bool Fill(std::chrono::steady_clock::time_point deadline) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string pending_;
};

// FreePort: a loopback port nobody listens on right now.
inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Fetch: one request on a new connection.
inline std::optional<HttpReply> Fetch(int port, absl::string_view method, absl::string_view target,
                                      const Headers& headers = {}, absl::string_view body = "") {
  HttpConnection c(port);
  if (!c.connected()) return std::nullopt;
  return c.Request(method, target, headers, body);
}

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_HTTP_CLIENT_H_
