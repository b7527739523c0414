package io.iotpipe.spark;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataType;

/**
 * The fast path's parser (see spark_jobs.classify): one pass over a Kafka record value that
 * reads the fields of a flat JSON object, but only when the record is in a shape whose
 * meaning is certain.
 *
 * <p>The result is a row: {@code certain}, then one value per field of the spec. {@code
 * certain} is true only for a single JSON object of printable ASCII without escapes, whose
 * values are all strings, numbers, true, false or null (no nesting), with no key twice, and
 * in which every spec field that is present has a token of its kind:
 *
 * <ul>
 *   <li>{@code uuid}: a string of 8-4-4-4-12 hex digits, returned in lower case;
 *   <li>{@code string}: a string that does not begin or end with a space;
 *   <li>{@code instant}: a string {@code YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)} of a
 *       real calendar date in years 1001 to 9998, returned as microseconds since the epoch;
 *   <li>{@code double}: a number, returned as a double;
 *   <li>{@code long}: an integer, returned as a long.
 * </ul>
 *
 * <p>A field marked nullable in the spec ({@code name:kind?}) may also be {@code null}. Numbers
 * are JSON's grammar with at most 18 integer digits and a two-digit exponent, so every number
 * is finite and fits a long or double exactly as a JSON library reads it. A missing field is
 * null, and certain: the caller decides whether it may be missing. Anything else is not
 * certain and the values mean nothing; the caller sends such a record to the event contract.
 *
 * <p>The rules of the contract itself (enumerations, lengths, ranges, the unit of a sensor
 * type) are not here: the caller checks them on the values, derived from the contract.
 */
public final class FlatJsonScanner implements UDF1<byte[], Row> {
  private static final long serialVersionUID = 1L;

  private static final int UUID = 0;
  private static final int STRING = 1;
  private static final int INSTANT = 2;
  private static final int DOUBLE = 3;
  private static final int LONG = 4;
  private static final String[] KINDS = {"uuid", "string", "instant", "double", "long"};

  private static final int MAX_INTEGER_DIGITS = 18;
  private static final int MAX_EXPONENT_DIGITS = 2;
  private static final int FAILED = -1;

  private final byte[][] names;
  private final int[] kinds;
  private final boolean[] nullable;

  /**
   * @param spec the fields, in the order of the result: {@code name:kind[?],...}, with a kind
   *     of {@code uuid}, {@code string}, {@code instant}, {@code double} or {@code long}, and
   *     {@code ?} for a field that may be null
   */
  public FlatJsonScanner(String spec) {
    String[] fields = spec.split(",");
    if (fields.length > 64) {
      throw new IllegalArgumentException("at most 64 fields: " + spec);
    }
    names = new byte[fields.length][];
    kinds = new int[fields.length];
    nullable = new boolean[fields.length];
    for (int i = 0; i < fields.length; i++) {
      String[] parts = fields[i].split(":", -1);
      if (parts.length != 2 || parts[0].isEmpty()) {
        throw new IllegalArgumentException("expected name:kind, got " + fields[i]);
      }
      String kind = parts[1];
      nullable[i] = kind.endsWith("?");
      kind = nullable[i] ? kind.substring(0, kind.length() - 1) : kind;
      kinds[i] = Arrays.asList(KINDS).indexOf(kind);
      if (kinds[i] < 0) {
        throw new IllegalArgumentException("unknown kind " + kind + " in " + fields[i]);
      }
      names[i] = parts[0].getBytes(StandardCharsets.US_ASCII);
    }
  }

  /**
   * The scanner as a Spark function of a binary column, returning {@code returnType} (a
   * struct of {@code certain} and the spec's fields, in order). Marked nondeterministic so
   * that the optimiser never copies the call into a filter or a second projection (each copy
   * would read every record again). A static factory, so that Java picks the UDF1 overload
   * of {@code functions.udf} (a caller through reflection, such as py4j, may pick the
   * untyped one).
   */
  public static UserDefinedFunction udf(String spec, DataType returnType) {
    return functions.udf(new FlatJsonScanner(spec), returnType).asNondeterministic();
  }

  @Override
  public Row call(byte[] value) {
    if (value == null) {
      return null;
    }
    Object[] row = new Object[names.length + 1];
    boolean certain = scan(value, row);
    row[0] = certain;
    if (!certain) {
      Arrays.fill(row, 1, row.length, null);
    }
    return RowFactory.create(row);
  }

  /** Reads the object into {@code row[1..]}; true when the record is certain. */
  private boolean scan(byte[] b, Object[] row) {
    int i = skipSpace(b, 0);
    if (i >= b.length || b[i] != '{') {
      return false;
    }
    i = skipSpace(b, i + 1);
    if (i < b.length && b[i] == '}') {
      return skipSpace(b, i + 1) == b.length;
    }
    long seen = 0;
    while (true) {
      if (i >= b.length || b[i] != '"') {
        return false;
      }
      int keyEnd = stringEnd(b, i + 1);
      if (keyEnd == FAILED) {
        return false;
      }
      int field = fieldIndex(b, i + 1, keyEnd);
      i = skipSpace(b, keyEnd + 1);
      if (i >= b.length || b[i] != ':') {
        return false;
      }
      i = skipSpace(b, i + 1);
      int end;
      if (field < 0) {
        end = scalarEnd(b, i);
      } else {
        if ((seen & (1L << field)) != 0) {
          return false;
        }
        seen |= 1L << field;
        end = readField(b, i, field, row);
      }
      if (end == FAILED) {
        return false;
      }
      i = skipSpace(b, end);
      if (i >= b.length) {
        return false;
      }
      if (b[i] == ',') {
        i = skipSpace(b, i + 1);
      } else if (b[i] == '}') {
        return skipSpace(b, i + 1) == b.length;
      } else {
        return false;
      }
    }
  }

  private int fieldIndex(byte[] b, int from, int to) {
    int length = to - from;
    for (int f = 0; f < names.length; f++) {
      byte[] name = names[f];
      if (name.length == length && Arrays.equals(name, 0, length, b, from, to)) {
        return f;
      }
    }
    return -1;
  }

  /** Reads field {@code field}'s token at {@code i} into the row; the token's end or FAILED. */
  private int readField(byte[] b, int i, int field, Object[] row) {
    if (i >= b.length) {
      return FAILED;
    }
    if (b[i] == 'n') {
      return nullable[field] ? literalEnd(b, i, "null") : FAILED;
    }
    int kind = kinds[field];
    if (kind == DOUBLE || kind == LONG) {
      int end = numberEnd(b, i, kind == LONG);
      if (end == FAILED) {
        return FAILED;
      }
      String text = new String(b, i, end - i, StandardCharsets.ISO_8859_1);
      if (kind == LONG) {
        row[field + 1] = Long.parseLong(text);
      } else if (isInteger(b, i, end)) { // as a JSON library does: an int, then a float (-0 is 0.0)
        row[field + 1] = (double) Long.parseLong(text);
      } else {
        row[field + 1] = Double.parseDouble(text);
      }
      return end;
    }
    if (b[i] != '"') {
      return FAILED;
    }
    int from = i + 1;
    int to = stringEnd(b, from);
    if (to == FAILED) {
      return FAILED;
    }
    Object value;
    switch (kind) {
      case UUID:
        value = uuid(b, from, to);
        break;
      case INSTANT:
        value = instantMicros(b, from, to);
        break;
      default: // STRING
        boolean padded = to > from && (b[from] == ' ' || b[to - 1] == ' ');
        value = padded ? null : new String(b, from, to - from, StandardCharsets.ISO_8859_1);
    }
    if (value == null) {
      return FAILED;
    }
    row[field + 1] = value;
    return to + 1;
  }

  private static int skipSpace(byte[] b, int i) {
    while (i < b.length && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')) {
      i++;
    }
    return i;
  }

  /** The closing quote of a string whose text starts at {@code i}: printable ASCII, no escapes. */
  private static int stringEnd(byte[] b, int i) {
    while (i < b.length) {
      byte c = b[i];
      if (c == '"') {
        return i;
      }
      if (c < 0x20 || c > 0x7e || c == '\\') {
        return FAILED;
      }
      i++;
    }
    return FAILED;
  }

  /** The end of the string, number, true, false or null at {@code i}, or FAILED. */
  private static int scalarEnd(byte[] b, int i) {
    if (i >= b.length) {
      return FAILED;
    }
    switch (b[i]) {
      case '"':
        int end = stringEnd(b, i + 1);
        return end == FAILED ? FAILED : end + 1;
      case 't':
        return literalEnd(b, i, "true");
      case 'f':
        return literalEnd(b, i, "false");
      case 'n':
        return literalEnd(b, i, "null");
      default:
        return numberEnd(b, i, false);
    }
  }

  private static int literalEnd(byte[] b, int i, String literal) {
    int n = literal.length();
    if (i + n > b.length) {
      return FAILED;
    }
    for (int k = 0; k < n; k++) {
      if (b[i + k] != literal.charAt(k)) {
        return FAILED;
      }
    }
    return i + n;
  }

  /**
   * The end of a JSON number at {@code i} (an integer only if asked), with at most {@link
   * #MAX_INTEGER_DIGITS} integer digits and {@link #MAX_EXPONENT_DIGITS} exponent digits.
   */
  private static int numberEnd(byte[] b, int i, boolean integer) {
    if (i < b.length && b[i] == '-') {
      i++;
    }
    int start = i;
    if (i < b.length && b[i] == '0') {
      i++;
    } else {
      i = digitsEnd(b, i);
    }
    if (i == start || i - start > MAX_INTEGER_DIGITS) {
      return FAILED;
    }
    if (integer) {
      return i;
    }
    if (i < b.length && b[i] == '.') {
      int fraction = i + 1;
      i = digitsEnd(b, fraction);
      if (i == fraction) {
        return FAILED;
      }
    }
    if (i < b.length && (b[i] == 'e' || b[i] == 'E')) {
      i++;
      if (i < b.length && (b[i] == '+' || b[i] == '-')) {
        i++;
      }
      int exponent = i;
      i = digitsEnd(b, exponent);
      if (i == exponent || i - exponent > MAX_EXPONENT_DIGITS) {
        return FAILED;
      }
    }
    return i;
  }

  private static boolean isInteger(byte[] b, int from, int to) {
    for (int i = from; i < to; i++) {
      if (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
        return false;
      }
    }
    return true;
  }

  private static int digitsEnd(byte[] b, int i) {
    while (i < b.length && b[i] >= '0' && b[i] <= '9') {
      i++;
    }
    return i;
  }

  private static String uuid(byte[] b, int from, int to) {
    if (to - from != 36) {
      return null;
    }
    char[] text = new char[36];
    for (int k = 0; k < 36; k++) {
      int c = b[from + k];
      if (k == 8 || k == 13 || k == 18 || k == 23) {
        if (c != '-') {
          return null;
        }
      } else if (c >= 'A' && c <= 'F') {
        c += 'a' - 'A';
      } else if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
        return null;
      }
      text[k] = (char) c;
    }
    return new String(text);
  }

  /** {@code YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)} as microseconds since the epoch. */
  private static Long instantMicros(byte[] b, int from, int to) {
    int length = to - from;
    if (length < 20
        || b[from + 4] != '-'
        || b[from + 7] != '-'
        || b[from + 10] != 'T'
        || b[from + 13] != ':'
        || b[from + 16] != ':') {
      return null;
    }
    int year = digits(b, from, 4);
    int month = digits(b, from + 5, 2);
    int day = digits(b, from + 8, 2);
    int hour = digits(b, from + 11, 2);
    int minute = digits(b, from + 14, 2);
    int second = digits(b, from + 17, 2);
    if (year < 1001
        || year > 9998
        || month < 1
        || month > 12
        || day < 1
        || day > daysInMonth(year, month)
        || hour < 0
        || hour > 23
        || minute < 0
        || minute > 59
        || second < 0
        || second > 59) {
      return null;
    }
    int i = from + 19;
    long micros = 0;
    if (b[i] == '.') {
      int fraction = ++i;
      i = digitsEnd(b, fraction);
      int count = i - fraction;
      if (count < 1 || count > 6 || i >= to) {
        return null;
      }
      micros = digits(b, fraction, count);
      for (int k = count; k < 6; k++) {
        micros *= 10;
      }
    }
    long offsetSeconds;
    if (b[i] == 'Z' && i + 1 == to) {
      offsetSeconds = 0;
    } else if ((b[i] == '+' || b[i] == '-') && i + 6 == to && b[i + 3] == ':') {
      int offsetHours = digits(b, i + 1, 2);
      int offsetMinutes = digits(b, i + 4, 2);
      if (offsetHours < 0 || offsetHours > 23 || offsetMinutes < 0 || offsetMinutes > 59) {
        return null;
      }
      offsetSeconds = (offsetHours * 3600L + offsetMinutes * 60L) * (b[i] == '-' ? -1 : 1);
    } else {
      return null;
    }
    long seconds =
        daysSinceEpoch(year, month, day) * 86_400L
            + hour * 3600L
            + minute * 60L
            + second
            - offsetSeconds;
    return seconds * 1_000_000L + micros;
  }

  /** The decimal value of {@code count} digits at {@code i}, or -1 if one is not a digit. */
  private static int digits(byte[] b, int i, int count) {
    int value = 0;
    for (int k = 0; k < count; k++) {
      int d = b[i + k] - '0';
      if (d < 0 || d > 9) {
        return -1;
      }
      value = value * 10 + d;
    }
    return value;
  }

  private static int daysInMonth(int year, int month) {
    if (month == 2) {
      boolean leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
      return leap ? 29 : 28;
    }
    return month == 4 || month == 6 || month == 9 || month == 11 ? 30 : 31;
  }

  /** Days from 1970-01-01 to a date of the proleptic Gregorian calendar (civil-from-days). */
  private static long daysSinceEpoch(int year, int month, int day) {
    int y = month <= 2 ? year - 1 : year;
    int era = y / 400;
    int yearOfEra = y - era * 400;
    int dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
    return era * 146_097L + dayOfEra - 719_468L;
  }
}
