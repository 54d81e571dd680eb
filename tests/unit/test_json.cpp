#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "core/json.hpp"

using bsp::Json;

TEST_CASE("json round trip keeps values and key order") {
  Json j = Json::object();
  j["b"] = 1;
  j["a"] = 2.5;
  j["s"] = "x\"y\n";
  j["n"] = nullptr;
  j["t"] = true;
  Json arr = Json::array();
  arr.push_back(1);
  arr.push_back("two");
  j["arr"] = arr;
  std::string text = j.dump();
  CHECK(text == R"({"b":1,"a":2.5,"s":"x\"y\n","n":null,"t":true,"arr":[1,"two"]})");
  Json back = Json::parse(text);
  CHECK(back.dump() == text);
  CHECK(back.at("a").as_double() == 2.5);
  CHECK(back.at("b").as_int() == 1);
  CHECK(back.at("arr")[1].as_string() == "two");
  CHECK(Json::parse(j.dump(2)).dump() == text);
}

TEST_CASE("json parses numbers, escapes and nesting") {
  Json j = Json::parse(R"( { "x": -12, "y": 1e3, "z": [ [], {} ], "u": "\u00e9\ud83d\ude00" } )");
  CHECK(j.at("x").as_int() == -12);
  CHECK(j.at("y").as_double() == 1000.0);
  CHECK(j.at("y").as_int() == 1000);
  CHECK(j.at("z").size() == 2);
  CHECK(j.at("u").as_string() == "\xc3\xa9\xf0\x9f\x98\x80");
}

TEST_CASE("json errors name the position") {
  CHECK_THROWS_WITH(Json::parse("{\"a\": }"), Catch::Contains("line 1, column 7"));
  CHECK_THROWS_WITH(Json::parse("[1,\n2,"), Catch::Contains("line 2"));
  CHECK_THROWS_AS(Json::parse("[1] x"), bsp::Error);
  CHECK_THROWS_AS(Json::parse("\"abc"), bsp::Error);
  CHECK_THROWS_AS(Json::parse("tru"), bsp::Error);
  CHECK_THROWS_AS(Json::parse("").at("x"), bsp::Error);
  CHECK_THROWS_WITH(Json::parse("{}").at("missing"), Catch::Contains("missing key 'missing'"));
  CHECK_THROWS_AS(Json::parse("\"s\"").as_int(), bsp::Error);
  CHECK_THROWS_AS(Json::parse("1.5").as_int(), bsp::Error);
}

TEST_CASE("json writes non-finite numbers as null") {
  CHECK(Json(std::numeric_limits<double>::infinity()).dump() == "null");
}
