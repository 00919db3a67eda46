// A long regular expression written as several literals, so that each stays within 100 columns:
// joined(/^lost Redis at \S+; /, /until it is back/) is /^lost Redis at \S+; until it is back/.
export function joined(...parts: RegExp[]): RegExp {
  return new RegExp(parts.map((part) => part.source).join(''), parts[0].flags)
}
