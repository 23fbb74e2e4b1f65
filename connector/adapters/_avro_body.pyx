# cython: language_level=3, boundscheck=False, wraparound=False
"""``CalendarEvent`` bodies written in C, for events that need nothing unusual.

Compiled when the package is built (``connector/native_build.py``); ``avro_native`` loads it if
it is there. It walks a tree of ``Record`` built once from ``EVENT_SPEC`` and writes what the
Python writers write (``avro_shapes``, ``avro_fastpath``), byte for byte, for an event whose keys
are all known and whose values all have their field's type. Anything else (an unknown key, a
value of another type, an integer beyond 64 bits, a lone surrogate, a dict subclass) raises
``Fallback`` or ``UnicodeEncodeError``, and the Python writers write the event.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem, PyDict_Next, PyDict_Size
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1


class Fallback(Exception):
    """Not for this writer: the Python writers write the event."""


cpdef enum Kind:
    STRING = 0
    BOOLEAN = 1
    LONG = 2
    ANY = 3  # any JSON value, as a JSON string
    RECORD = 4
    RECORDS = 5  # array of records
    STRINGS = 6  # array of strings
    STRING_MAP = 7


cdef struct Buf:
    char* data
    Py_ssize_t size
    Py_ssize_t cap


cdef int reserve(Buf* b, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = b.cap
    cdef char* data
    if b.size + need <= cap:
        return 0
    while cap < b.size + need:
        cap *= 2
    data = <char*>realloc(b.data, cap)
    if data == NULL:
        raise MemoryError()
    b.data = data
    b.cap = cap
    return 0


cdef inline int put(Buf* b, char c) except -1:
    reserve(b, 1)
    b.data[b.size] = c
    b.size += 1
    return 0


cdef int put_long(Buf* b, long long n) except -1:
    """An Avro long: zig-zag, then base-128 varint."""
    cdef unsigned long long z = (<unsigned long long>n << 1) ^ <unsigned long long>(n >> 63)
    reserve(b, 10)
    while z > 0x7F:
        b.data[b.size] = <char>((z & 0x7F) | 0x80)
        b.size += 1
        z >>= 7
    b.data[b.size] = <char>z
    b.size += 1
    return 0


cdef int put_string(Buf* b, object s) except -1:
    cdef Py_ssize_t n
    cdef const char* p
    if type(s) is not str:
        raise Fallback
    p = PyUnicode_AsUTF8AndSize(s, &n)  # UnicodeEncodeError on a lone surrogate
    put_long(b, n)
    reserve(b, n)
    memcpy(b.data + b.size, p, n)
    b.size += n
    return 0


cdef class Field:
    cdef object key
    cdef int kind
    cdef Record sub


cdef class Record:
    """A record of the spec: its fields in schema order."""

    cdef list fields
    cdef object dumps

    def __init__(self, dumps):
        self.fields = []
        self.dumps = dumps  # the JSON text of an ``any`` value, as the Python writers make it

    def add(self, str key, int kind, Record sub=None):
        cdef Field f = Field()
        f.key = key
        f.kind = kind
        f.sub = sub
        self.fields.append(f)


cdef int put_record(Record rec, object o, Buf* b) except -1:
    cdef Py_ssize_t present = 0
    cdef Py_ssize_t i, count, pos
    cdef PyObject* found
    cdef PyObject* mk
    cdef PyObject* mv
    cdef Field f
    cdef object v
    cdef int overflow = 0
    cdef long long n
    if type(o) is not dict:
        raise Fallback
    for f in rec.fields:
        found = PyDict_GetItem(o, f.key)
        if found == NULL:
            put(b, 0)  # the union's null
            continue
        v = <object>found
        present += 1
        put(b, 2)  # the union's other branch
        if f.kind == STRING:
            put_string(b, v)
        elif f.kind == BOOLEAN:
            if v is True:
                put(b, 1)
            elif v is False:
                put(b, 0)
            else:
                raise Fallback
        elif f.kind == LONG:
            if type(v) is not int:
                raise Fallback
            n = PyLong_AsLongLongAndOverflow(v, &overflow)
            if overflow:
                raise Fallback
            put_long(b, n)
        elif f.kind == ANY:
            if v is None:
                raise Fallback
            put_string(b, rec.dumps(v))
        elif f.kind == RECORD:
            put_record(f.sub, v, b)
        elif f.kind == RECORDS or f.kind == STRINGS:
            if type(v) is not list:
                raise Fallback
            count = PyList_GET_SIZE(v)
            if count:
                put_long(b, count)
                for i in range(count):
                    if f.kind == RECORDS:
                        put_record(f.sub, <object>PyList_GET_ITEM(v, i), b)
                    else:
                        put_string(b, <object>PyList_GET_ITEM(v, i))
            put(b, 0)  # end of the blocks
        else:  # STRING_MAP
            if type(v) is not dict:
                raise Fallback
            count = PyDict_Size(v)
            if count:
                put_long(b, count)
                pos = 0
                while PyDict_Next(v, &pos, &mk, &mv):
                    put_string(b, <object>mk)
                    put_string(b, <object>mv)
            put(b, 0)
    if present != PyDict_Size(o):
        raise Fallback  # keys the schema does not know: unknown_fields
    put(b, 0)  # unknown_fields: null
    return 0


cdef class BodyWriter:
    """``BodyWriter(top)(event)``: the body's bytes, or Fallback."""

    cdef Record top

    def __init__(self, Record top):
        self.top = top

    def __call__(self, obj):
        cdef Buf b
        b.data = <char*>malloc(4096)
        if b.data == NULL:
            raise MemoryError()
        b.size = 0
        b.cap = 4096
        try:
            put_record(self.top, obj, &b)
            return PyBytes_FromStringAndSize(b.data, b.size)
        finally:
            free(b.data)
