#include "sources/files/line_cutter.hpp"

#include <simdjson.h>

#include <cstring>

#include "core/log_record.hpp"

namespace sluice::sources {

bool valid_utf8(std::string_view text) { return simdjson::validate_utf8(text.data(), text.size()); }

LineCutter::LineCutter(const FileSourceConfig& config)
    : max_(config.max_line_bytes), long_lines_(config.long_lines) {
  if (config.multiline) {
    multiline_.emplace(config.multiline->pattern, std::regex::ECMAScript | std::regex::optimize);
    mode_ = config.multiline->mode;
    max_event_lines_ = config.multiline->max_lines;
    timeout_ = config.multiline->timeout;
  }
}

bool LineCutter::emit(LineSink& sink, std::uint64_t offset, std::uint64_t end, std::string_view text,
                      std::uint8_t flags, bool known_valid) {
  if (!known_valid && !valid_utf8(text)) flags |= kLogLineInvalidUtf8;
  if (!sink.line(CutLine{offset, end, text, flags})) return false;
  ++counts_.lines;
  if (flags & kLogLineInvalidUtf8) ++counts_.invalid_utf8;
  if (flags & kLogLineSplit) ++counts_.split;
  if (flags & kLogLineTruncated) ++counts_.truncated;
  return true;
}

bool LineCutter::long_line(const char* p, std::size_t avail, std::uint64_t offset, CutterState& state,
                           LineSink& sink, std::size_t& used, bool known_valid) {
  if (long_lines_ == LongLines::split) {
    // Cut before a UTF-8 sequence rather than inside it, so that valid text stays valid piece by piece.
    std::size_t cut = max_;
    while (cut > max_ - 3 && cut > 1 && (static_cast<unsigned char>(p[cut]) & 0xC0) == 0x80) --cut;
    if ((static_cast<unsigned char>(p[cut]) & 0xC0) == 0x80) cut = max_;
    if (!emit(sink, offset, offset + cut, {p, cut}, kLogLineSplit, known_valid)) return false;
    used = cut;
    return true;
  }
  state.held.assign(p, max_);
  state.held_offset = offset;
  state.skipping = true;
  const char* nl = static_cast<const char*>(std::memchr(p + max_, '\n', avail - max_));
  used = nl ? static_cast<std::size_t>(nl - p) : avail;
  return true;  // the held line goes out once its end is found (next loop turn or a later cut)
}

std::size_t LineCutter::cut(std::span<const char> data, std::uint64_t base, CutterState& state, LineSink& sink,
                            Flush flush) {
  const char* b = data.data();
  const std::size_t n = data.size();
  // One vectorized check for every complete line of the buffer; lines are only checked one by one
  // when it fails.
  std::size_t valid_prefix = 0;
  if (const void* last = n ? memrchr(b, '\n', n) : nullptr) {
    std::size_t upto = static_cast<const char*>(last) - b + 1;
    if (simdjson::validate_utf8(b, upto)) valid_prefix = upto;
  }
  std::size_t pos = 0;

  // Multiline event being built: [ev_start, ev_text_end) is its text, ev_next follows its last terminator.
  bool ev_open = false;
  std::size_t ev_start = 0, ev_text_end = 0, ev_next = 0, ev_lines = 0;
  auto close_event = [&]() -> bool {
    if (!ev_open) return true;
    std::uint8_t flags = ev_lines > 1 ? kLogLineMultiline : 0;
    if (!emit(sink, base + ev_start, base + ev_next, {b + ev_start, ev_text_end - ev_start}, flags,
              ev_next <= valid_prefix)) {
      return false;
    }
    ev_open = false;
    return true;
  };
  auto stop_at = [&](std::size_t at) {
    if (!ev_open) state.pending_event.reset();
    return at;
  };

  while (pos < n || state.skipping) {
    if (state.skipping) {
      const char* nl = static_cast<const char*>(std::memchr(b + pos, '\n', n - pos));
      if (!nl && flush != Flush::all) return stop_at(n);
      std::size_t end = nl ? static_cast<std::size_t>(nl - b) + 1 : n;
      if (!emit(sink, state.held_offset, base + end, state.held, kLogLineTruncated, false)) {
        return stop_at(nl ? static_cast<std::size_t>(nl - b) : n);
      }
      state.skipping = false;
      state.held.clear();
      pos = end;
      continue;
    }
    const std::size_t avail = n - pos;
    const char* nl = static_cast<const char*>(std::memchr(b + pos, '\n', std::min(avail, max_ + 2)));
    if (nl) {
      std::size_t len = static_cast<std::size_t>(nl - (b + pos));
      std::size_t tl = len;
      if (tl && b[pos + tl - 1] == '\r') --tl;
      if (tl <= max_) {
        std::size_t next = pos + len + 1;
        if (!multiline_) {
          if (!emit(sink, base + pos, base + next, {b + pos, tl}, 0, next <= valid_prefix)) return stop_at(pos);
        } else {
          bool matches = std::regex_search(b + pos, b + pos + tl, *multiline_);
          bool begins = !ev_open || (mode_ == MultilineConfig::Mode::start ? matches : !matches);
          if (!begins && (ev_lines + 1 > max_event_lines_ || pos + tl - ev_start > max_)) begins = true;
          if (begins) {
            if (!close_event()) return stop_at(ev_start);
            ev_open = true;
            ev_start = pos;
            ev_lines = 1;
          } else {
            ++ev_lines;
          }
          ev_text_end = pos + tl;
          ev_next = next;
        }
        pos = next;
        continue;
      }
    } else if (avail < max_ + 2 && flush != Flush::all) {
      break;  // an incomplete line: wait for its end
    } else if (avail <= max_) {
      // The file is finished: its last line has no terminator.
      if (!close_event()) return stop_at(ev_start);
      if (!emit(sink, base + pos, base + n, {b + pos, avail}, 0, false)) return stop_at(pos);
      pos = n;
      break;
    }
    // Over the maximum with no terminator in reach.
    if (!close_event()) return stop_at(ev_start);
    std::size_t used = 0;
    if (!long_line(b + pos, avail, base + pos, state, sink, used, pos + max_ < valid_prefix)) return stop_at(pos);
    pos += used;
  }

  if (ev_open) {
    if (flush != Flush::none) {
      if (!close_event()) return stop_at(ev_start);
    } else {
      // Keep the event open: the next read starts again at its first line.
      if (state.pending_event != base + ev_start) {
        state.pending_event = base + ev_start;
        state.pending_since = std::chrono::steady_clock::now();
      }
      return ev_start;
    }
  }
  return stop_at(pos);
}

}  // namespace sluice::sources
